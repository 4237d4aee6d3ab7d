#include "reel/data/world_metrics.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <iomanip>
#include <sstream>

namespace reel {
namespace {

double ratio(double a, double b) { return b > 0 ? a / b : std::nan(""); }

// Mean over the second dimension's entries, per entry: sums [n] / clips.
std::vector<double> means(const std::vector<double>& sums, double clips) {
  std::vector<double> out;
  for (double s : sums) out.push_back(ratio(s, clips));
  return out;
}

std::string fixed(double x, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << x;
  return s.str();
}

double total(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

at::Tensor agent_positions(const at::Tensor& frames) {
  TORCH_CHECK(frames.dim() == 4 && frames.size(1) == 3, "agent_positions takes RGB frames [N, 3, H, W], got ",
              frames.sizes());
  const int64_t h = frames.size(2), w = frames.size(3);
  auto v = (frames.to(at::kDouble) + 1) / 2;                       // [N, 3, H, W] in [0, 1]
  auto white = ((std::get<0>(v.min(1)) - 0.5) / 0.5).clamp(0, 1);  // [N, H, W]
  auto ys = at::arange(h, at::kDouble).add(0.5).view({1, h, 1});
  auto xs = at::arange(w, at::kDouble).add(0.5).view({1, 1, w});
  auto mass = white.sum({1, 2});  // [N]
  auto x = (white * xs).sum({1, 2}) / mass.clamp_min(1e-9);
  auto y = (white * ys).sum({1, 2}) / mass.clamp_min(1e-9);
  auto found = mass > 0.5;  // at least half a pixel of white
  x = at::where(found, x, at::full_like(x, w / 2.0));
  y = at::where(found, y, at::full_like(y, h / 2.0));
  return at::stack({x, y}, 1);
}

at::Tensor agent_action_response(const at::Tensor& delta, int64_t height, int64_t width, double push) {
  TORCH_CHECK(delta.dim() == 3 && delta.size(2) == 2, "agent_action_response takes actions [B, T, 2]");
  const double scale = std::min(height, width) / 32.0;
  // Within frame t's four substeps the push adds dv/4 each, moving the agent by
  // dv (1 + 2 + 3 + 4) / 16; in every later frame the velocity gained moves it by dv.
  auto dv = delta.to(at::kDouble) * (push * scale);  // [B, T, 2]
  const int64_t t_len = delta.size(1);
  auto out = at::zeros_like(dv);
  for (int64_t frame = 1; frame < t_len; ++frame) {
    for (int64_t t = 0; t < frame; ++t) {
      out.select(1, frame) += dv.select(1, t) * (10.0 / 16.0 + double(frame - 1 - t));
    }
  }
  return out;
}

at::Tensor reversed_actions(const at::Tensor& actions, int64_t from) {
  auto out = actions.clone();
  const int64_t n = actions.size(1) - from;
  if (n > 0) out.narrow(1, from, n).neg_();
  return out;
}

RolloutMetrics::RolloutMetrics(int64_t groups, int64_t frames)
    : groups_(groups),
      frames_(frames),
      mse_model_(groups),
      mse_copy_(groups),
      agent_model_(frames),
      agent_copy_(frames) {}

void RolloutMetrics::add(const at::Tensor& truth, const at::Tensor& predicted, const at::Tensor& predicted_reversed,
                         const at::Tensor& actions, int64_t context_frames) {
  const int64_t b = truth.size(0), t_len = truth.size(1), c = context_frames, n = t_len - c;
  TORCH_CHECK(n == frames_ && n % groups_ == 0, "rollout metrics for ", frames_, " predicted frames, got ", n);
  const int64_t per_group = n / groups_, h = truth.size(3), w = truth.size(4);
  auto future = truth.narrow(1, c, n).to(at::kDouble);
  auto model = predicted.narrow(1, c, n).to(at::kDouble).clamp(-1, 1);
  auto copy = truth.select(1, c - 1).unsqueeze(1).to(at::kDouble).expand_as(future);
  auto per_frame = [&](const at::Tensor& x) { return (x - future).pow(2).mean({2, 3, 4}).sum(0); };  // [n]
  auto mse_m = per_frame(model), mse_c = per_frame(copy);
  auto flat = [&](const at::Tensor& x) { return x.reshape({b * n, 3, h, w}); };
  auto where_truth = agent_positions(flat(future)).view({b, n, 2});
  auto where_model = agent_positions(flat(model)).view({b, n, 2});
  auto where_last = agent_positions(truth.select(1, c - 1).to(at::kDouble)).view({b, 1, 2});
  auto err_m = (where_model - where_truth).norm(2, {2}).sum(0), err_c = (where_last - where_truth).norm(2, {2}).sum(0);
  for (int64_t f = 0; f < n; ++f) {
    mse_model_[f / per_group] += mse_m[f].item<double>() / per_group;
    mse_copy_[f / per_group] += mse_c[f].item<double>() / per_group;
    agent_model_[f] += err_m[f].item<double>();
    agent_copy_[f] += err_c[f].item<double>();
  }
  auto reversed = reversed_actions(actions, c - 1);
  auto physics = agent_action_response((reversed - actions).narrow(2, 0, 2), h, w).narrow(1, c, n);  // [B, n, 2]
  auto shifted = agent_positions(flat(predicted_reversed.narrow(1, c, n).to(at::kDouble).clamp(-1, 1))).view({b, n, 2});
  auto shift = shifted - where_model;
  shift_dot_ += (shift * physics).sum().item<double>();
  shift_physics2_ += physics.pow(2).sum().item<double>();
  shift_model_ += shift.norm(2, {2}).sum().item<double>();
  shift_physics_ += physics.norm(2, {2}).sum().item<double>();
  clips_ += double(b);
}

at::Tensor RolloutMetrics::pack() const {
  std::vector<double> all{clips_, shift_dot_, shift_physics2_, shift_model_, shift_physics_};
  for (const auto* v : {&mse_model_, &mse_copy_, &agent_model_, &agent_copy_})
    all.insert(all.end(), v->begin(), v->end());
  return at::tensor(all, at::kDouble);
}

void RolloutMetrics::unpack(const at::Tensor& packed) {
  auto p = packed.to(at::kDouble).cpu().contiguous();
  const double* d = p.data_ptr<double>();
  TORCH_CHECK(p.numel() == 5 + 2 * (groups_ + frames_), "rollout metrics: packed size mismatch");
  clips_ = d[0], shift_dot_ = d[1], shift_physics2_ = d[2], shift_model_ = d[3], shift_physics_ = d[4];
  d += 5;
  for (auto* v : {&mse_model_, &mse_copy_, &agent_model_, &agent_copy_}) {
    for (auto& x : *v) x = *d++;
  }
}

double RolloutMetrics::mse() const { return ratio(total(mse_model_), clips_ * groups_); }
double RolloutMetrics::mse_copy() const { return ratio(total(mse_copy_), clips_ * groups_); }
double RolloutMetrics::agent_error() const { return ratio(total(agent_model_), clips_ * frames_); }
double RolloutMetrics::agent_error_copy() const { return ratio(total(agent_copy_), clips_ * frames_); }
double RolloutMetrics::action_gain() const { return ratio(shift_dot_, shift_physics2_); }
double RolloutMetrics::action_shift() const { return ratio(shift_model_, clips_ * frames_); }
double RolloutMetrics::action_shift_physics() const { return ratio(shift_physics_, clips_ * frames_); }

std::string RolloutMetrics::json_fields() const {
  nlohmann::json j;
  std::vector<double> group_ratio;
  for (int64_t g = 0; g < groups_; ++g) group_ratio.push_back(ratio(mse_model_[g], mse_copy_[g]));
  j["rollout_mse"] = mse();
  j["rollout_mse_copy"] = mse_copy();
  j["rollout_ratio"] = ratio(mse(), mse_copy());
  j["rollout_mse_groups"] = means(mse_model_, clips_);
  j["rollout_ratio_groups"] = group_ratio;
  j["agent_err_px"] = agent_error();
  j["agent_err_copy_px"] = agent_error_copy();
  j["agent_err_ratio"] = ratio(agent_error(), agent_error_copy());
  j["agent_err_px_frames"] = means(agent_model_, clips_);
  j["action_gain"] = action_gain();
  j["action_shift_px"] = action_shift();
  j["action_shift_physics_px"] = action_shift_physics();
  const std::string s = j.dump();
  return s.substr(1, s.size() - 2);  // without the braces: fields to merge into a record
}

std::string RolloutMetrics::summary() const {
  std::ostringstream s;
  s << "rollout MSE " << fixed(mse(), 4) << " vs copy-last-frame " << fixed(mse_copy(), 4) << " (ratio "
    << fixed(ratio(mse(), mse_copy()), 2) << ") over " << groups_ << " predicted frame-group(s) of " << clips_
    << " clips\n"
    << "agent position error " << fixed(agent_error(), 2) << " px vs copy-last-frame " << fixed(agent_error_copy(), 2)
    << " px (ratio " << fixed(ratio(agent_error(), agent_error_copy()), 2) << ")\n"
    << "action following: reversed actions move the predicted agent " << fixed(action_shift(), 2)
    << " px (physics: " << fixed(action_shift_physics(), 2) << " px), gain " << fixed(action_gain(), 2)
    << " along the physics' shift (1: as the physics, 0: actions ignored)";
  return s.str();
}

}  // namespace reel
