#include "reel/data/physics_world.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "reel/data/video_file.hpp"
#include "reel/dist/require.hpp"
#include "reel/model/seed.hpp"

namespace reel {
namespace {

struct Ball {
  double x, y, vx, vy, r;
  uint8_t color[3];
};

constexpr uint8_t kColors[][3] = {{255, 255, 255}, {230, 60, 60},  {60, 200, 80},
                                  {70, 110, 240},  {230, 200, 50}, {200, 80, 220}};
constexpr int kSubsteps = 4;

void collide_walls(Ball& b, double w, double h) {
  if (b.x < b.r) {
    b.x = 2 * b.r - b.x;
    b.vx = std::abs(b.vx);
  }
  if (b.x > w - b.r) {
    b.x = 2 * (w - b.r) - b.x;
    b.vx = -std::abs(b.vx);
  }
  if (b.y < b.r) {
    b.y = 2 * b.r - b.y;
    b.vy = std::abs(b.vy);
  }
  if (b.y > h - b.r) {
    b.y = 2 * (h - b.r) - b.y;
    b.vy = -std::abs(b.vy);
  }
}

// Equal masses: an elastic collision exchanges the velocity components along the normal.
void collide_pair(Ball& a, Ball& b) {
  const double dx = b.x - a.x, dy = b.y - a.y, dist = std::hypot(dx, dy), min = a.r + b.r;
  if (dist >= min || dist == 0) return;
  const double nx = dx / dist, ny = dy / dist;
  const double rel = (a.vx - b.vx) * nx + (a.vy - b.vy) * ny;
  if (rel > 0) {
    a.vx -= rel * nx;
    a.vy -= rel * ny;
    b.vx += rel * nx;
    b.vy += rel * ny;
  }
  const double push = (min - dist) / 2;  // separate overlapping balls
  a.x -= push * nx;
  a.y -= push * ny;
  b.x += push * nx;
  b.y += push * ny;
}

void render(const std::vector<Ball>& balls, uint8_t* img, int64_t h, int64_t w) {
  std::fill(img, img + h * w * 3, uint8_t{0});
  for (const auto& b : balls) {
    for (int64_t y = std::max<int64_t>(0, b.y - b.r - 1); y < std::min<int64_t>(h, b.y + b.r + 2); ++y) {
      for (int64_t x = std::max<int64_t>(0, b.x - b.r - 1); x < std::min<int64_t>(w, b.x + b.r + 2); ++x) {
        // Anti-aliased disk: coverage falls off over one pixel at the rim.
        const double d = std::hypot(x + 0.5 - b.x, y + 0.5 - b.y);
        const double cover = std::clamp(b.r + 0.5 - d, 0.0, 1.0);
        for (int c = 0; c < 3; ++c) {
          uint8_t& p = img[(y * w + x) * 3 + c];
          p = static_cast<uint8_t>(std::max<double>(p, cover * b.color[c]));
        }
      }
    }
  }
}

}  // namespace

PhysicsClip simulate_clip(const PhysicsWorldSpec& s, int64_t index, const at::Tensor& actions) {
  if (actions.defined() && (actions.dim() != 2 || actions.size(0) != s.frames || actions.size(1) != 2)) {
    throw std::invalid_argument("physics world: replacement actions must be [frames, 2]");
  }
  std::mt19937_64 rng(mix_seed(s.seed, index, 0x70687973));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double scale = std::min(s.height, s.width) / 32.0, r = s.radius * scale;
  std::vector<Ball> balls;
  for (int64_t i = 0; i < s.balls; ++i) {
    Ball b{};
    b.r = r;
    b.x = r + unit(rng) * (s.width - 2 * r);
    b.y = r + unit(rng) * (s.height - 2 * r);
    b.vx = (2 * unit(rng) - 1) * s.max_speed * scale;
    b.vy = (2 * unit(rng) - 1) * s.max_speed * scale;
    std::copy(kColors[i % 6], kColors[i % 6] + 3, b.color);
    balls.push_back(b);
  }
  PhysicsClip clip{at::empty({s.frames, s.height, s.width, 3}, at::kByte), at::empty({s.frames, 2}, at::kFloat)};
  double ax = 0, ay = 0;
  const double g = s.gravity * scale / (kSubsteps * kSubsteps), dt = 1.0 / kSubsteps;
  for (int64_t t = 0; t < s.frames; ++t) {
    render(balls, clip.frames[t].data_ptr<uint8_t>(), s.height, s.width);
    // The action applied between frame t and t + 1: a smooth random walk.
    ax = std::clamp(0.8 * ax + 0.6 * (2 * unit(rng) - 1), -1.0, 1.0);
    ay = std::clamp(0.8 * ay + 0.6 * (2 * unit(rng) - 1), -1.0, 1.0);
    if (actions.defined()) {  // the random walk is still drawn: the rest stays the same
      ax = actions[t][0].item<double>();
      ay = actions[t][1].item<double>();
    }
    clip.actions[t][0] = ax;
    clip.actions[t][1] = ay;
    for (int sub = 0; sub < kSubsteps; ++sub) {
      balls[0].vx += s.push * scale * ax / kSubsteps;
      balls[0].vy += s.push * scale * ay / kSubsteps;
      for (auto& b : balls) {
        b.vy += g * kSubsteps;  // gravity points down the image
        b.x += b.vx * dt;
        b.y += b.vy * dt;
        collide_walls(b, s.width, s.height);
      }
      for (size_t i = 0; i < balls.size(); ++i)
        for (size_t j = i + 1; j < balls.size(); ++j) collide_pair(balls[i], balls[j]);
    }
  }
  return clip;
}

void PhysicsWorldSpec::validate() const {
  const Require need{"physics world: "};
  need(clips >= 1 && frames >= 1 && height >= 8 && width >= 8 && balls >= 1,
       "need clips >= 1, frames >= 1, height and width >= 8, balls >= 1");
  const auto got = [](double value) { return ", got " + std::to_string(value); };
  need(std::isfinite(radius) && radius > 0 && radius < 16, "radius must be in (0, 16) pixels at 32x32" + got(radius));
  need(std::isfinite(gravity) && std::abs(gravity) <= 4,
       "gravity must be finite, in [-4, 4] pixels / frame^2" + got(gravity));
  need(std::isfinite(max_speed) && max_speed >= 0, "max_speed must be finite and >= 0" + got(max_speed));
  need(std::isfinite(push), "push must be finite" + got(push));
  need(std::isfinite(fps) && fps > 0, "fps must be finite and > 0" + got(fps));
}

void write_physics_world(const std::string& path, const PhysicsWorldSpec& s) {
  s.validate();
  const std::string provenance = "reel physics world: seed " + std::to_string(s.seed) + ", " + std::to_string(s.balls) +
                                 " balls, gravity " + std::to_string(s.gravity);
  VideoWriter writer(path, s.clips, s.frames, s.height, s.width, 3, 2, s.fps, provenance);
  for (int64_t i = 0; i < s.clips; ++i) {
    auto clip = simulate_clip(s, i);
    writer.write(i, clip.frames, clip.actions);
  }
  writer.close();  // with the content hash of the clips just written
}

}  // namespace reel
