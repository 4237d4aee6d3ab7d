// `reel plan`'s output: a table for people, JSON for tools.
#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>
#include <vector>

#include "reel/plan/search.hpp"

namespace reel {
namespace {

std::string num(double v, const char* format) {
  char text[48];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

std::string rate(double tokens_per_s) {
  if (tokens_per_s >= 1e6) return num(tokens_per_s / 1e6, "%.2fM");
  if (tokens_per_s >= 1e3) return num(tokens_per_s / 1e3, "%.1fk");
  return num(tokens_per_s, "%.0f");
}

std::string seconds(double s) { return s >= 1 ? num(s, "%.2f s") : num(s * 1e3, "%.1f ms"); }

std::string header(const Plan& p) {
  const auto& c = p.cluster;
  const auto* first = !p.fitting.empty() ? &p.fitting.front() : (!p.rejected.empty() ? &p.rejected.front() : nullptr);
  std::ostringstream out;
  if (first) {
    const auto& m = first->config.model;
    out << "model " << m.name() << ": " << num(double(p.shape.parameters()) / 1e9, "%.3f") << "B parameters, "
        << m.tokens() << " tokens per clip, global batch " << first->config.data.global_batch << " clips ("
        << first->config.data.global_batch * m.tokens() << " tokens)\n";
  }
  out << "cluster " << c.name << ": " << c.nodes << " node(s) x " << c.gpus_per_node << (c.gpu ? " GPUs" : " ranks")
      << " = " << c.devices() << ", " << gb(c.memory_bytes) << " each; links " << num(c.intra_bw / 1e9, "%.0f")
      << " GB/s inside a node, " << num(c.inter_bw / 1e9, "%.0f") << " GB/s across; peak "
      << num(c.device_flops() / 1e12, "%.3g") << " TFLOP/s per device at " << num(100 * c.efficiency, "%.0f")
      << "% efficiency\n  (" << c.notes << ")\n";
  return out.str();
}

}  // namespace

std::string plan_text(const Plan& p, size_t top) {
  std::ostringstream out;
  out << header(p);
  const size_t considered = p.fitting.size() + p.rejected.size();
  out << p.fitting.size() << " of " << considered << " layouts fit";
  if (p.fitting.empty()) {
    out << ".\n";
  } else {
    out << "; " << (p.fitting.size() > top ? "the fastest " + std::to_string(top) : std::string("fastest first"))
        << ":\n";
    out << "     step  tokens/s   MFU  memory/dev  (persist + activ)  exposed comm  layout\n";
    for (size_t i = 0; i < p.fitting.size() && i < top; ++i) {
      const auto& e = p.fitting[i];
      const double exposed = e.gather_exposed_s + e.reduce_exposed_s + e.sp_exposed_s + e.small_s;
      out << num(double(i + 1), "%3.0f") << "  " << seconds(e.step_s) << "  " << rate(e.tokens_per_s) << "  "
          << num(100 * e.mfu, "%4.1f%%") << "  " << gb(e.total()) << "  (" << gb(e.persistent) << " + "
          << gb(e.activations) << ")  " << seconds(exposed) << "  " << describe_layout(e) << "\n";
    }
  }
  if (!p.rejected.empty()) {
    // Group the reasons: memory, and each distinct reason reel gives for a split.
    std::map<std::string, std::pair<int, const Estimate*>> groups;
    for (const auto& e : p.rejected) {
      const std::string key = e.reason.rfind("needs ", 0) == 0 ? "does not fit in memory" : e.reason;
      auto& g = groups[key];
      if (g.first++ == 0) g.second = &e;
    }
    std::vector<std::pair<int, std::string>> order;
    for (const auto& [key, g] : groups) order.emplace_back(-g.first, key);
    std::sort(order.begin(), order.end());
    out << p.rejected.size() << " layout(s) rejected, by reason (--json lists each):\n";
    for (size_t i = 0; i < order.size() && i < 6; ++i) {
      const auto& g = groups[order[i].second];
      out << "  " << g.first << " x " << order[i].second;
      if (order[i].second == "does not fit in memory")
        out << ", e.g. " << describe_layout(*g.second) << ": " << g.second->reason;
      out << "\n";
    }
    if (order.size() > 6) out << "  ... and " << order.size() - 6 << " other reasons\n";
  }
  return out.str();
}

nlohmann::json plan_json(const Plan& p) {
  const auto& c = p.cluster;
  nlohmann::json j;
  j["cluster"] = {{"name", c.name},
                  {"gpu", c.gpu},
                  {"nodes", c.nodes},
                  {"gpus_per_node", c.gpus_per_node},
                  {"memory_bytes", c.memory_bytes},
                  {"reserve_bytes", c.reserve_bytes},
                  {"intra_bw", c.intra_bw},
                  {"intra_latency_s", c.intra_latency},
                  {"inter_bw", c.inter_bw},
                  {"inter_latency_s", c.inter_latency},
                  {"peak_flops_per_device", c.device_flops()},
                  {"efficiency", c.efficiency},
                  {"notes", c.notes}};
  j["model"] = {{"parameters", p.shape.parameters()},
                {"root_unit", p.shape.root},
                {"block_unit", p.shape.block},
                {"depth", p.shape.depth}};
  j["layouts"] = nlohmann::json::array();
  auto add = [&](const Estimate& e) {
    const auto& cfg = e.config;
    const int sp = cfg.mesh.sp;
    nlohmann::json l = {{"layout", describe_layout(e)},
                        {"fits", e.fits},
                        {"reason", e.reason},
                        {"dp", cfg.mesh.dp_for(e.world)},
                        {"sp", sp},
                        {"sp_mode", enum_name(cfg.parallel.sequence.mode)},
                        {"ulysses", cfg.parallel.sequence.ulysses_degree(sp)},
                        {"shard_group", cfg.mesh.shard_ranks(e.world, p.cluster.gpus_per_node)},
                        {"activation_checkpoint", enum_name(cfg.parallel.activation_checkpoint.mode)},
                        {"micro_batches", cfg.data.micro_batches},
                        {"grad_accumulation", enum_name(cfg.parallel.fsdp.grad_accumulation)},
                        {"global_batch", cfg.data.global_batch}};
    if (e.reason.empty() || e.reason.rfind("needs ", 0) == 0) {  // estimated (fits, or over memory)
      // persistent = fp32 parameter shard (4 bytes per element) + gradient shard (4) + AdamW
      // moments and decay mask (12).
      l["memory_bytes"] = {{"parameter_shards", e.persistent * 4 / 20},
                           {"gradient_shards", e.persistent * 4 / 20},
                           {"optimizer_state", e.persistent * 12 / 20},
                           {"persistent", e.persistent},
                           {"gathered", e.gathered},
                           {"activations", e.activations},
                           {"buffers", e.buffers},
                           {"reserve", e.reserve},
                           {"total", e.total()}};
      l["time_s"] = {{"compute", e.compute_s},
                     {"gather", e.gather_s},
                     {"gather_exposed", e.gather_exposed_s},
                     {"reduce", e.reduce_s},
                     {"reduce_exposed", e.reduce_exposed_s},
                     {"sp", e.sp_s},
                     {"sp_exposed", e.sp_exposed_s},
                     {"small", e.small_s},
                     {"step", e.step_s}};
      l["tokens_per_s"] = e.tokens_per_s;
      l["mfu"] = e.mfu;
      l["comm_bytes"] = e.comm_bytes;
      l["comm_bytes_internode"] = e.comm_bytes_internode;
    }
    j["layouts"].push_back(l);
  };
  for (const auto& e : p.fitting) add(e);
  for (const auto& e : p.rejected) add(e);
  return j;
}

}  // namespace reel
