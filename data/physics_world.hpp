// A synthetic physics world for world-model training: balls under gravity with elastic
// collisions against the walls and each other, one agent ball (white) pushed by the
// actions. Deterministic from (seed, clip index): any size, resolution and clip length.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace reel {

struct PhysicsWorldSpec {
  int64_t clips = 256, frames = 8, height = 16, width = 16;  // the tiny preset's clips
  int64_t balls = 3;                                         // including the agent; at least 1
  double radius = 3.0;                                       // pixels at 32 x 32 (scaled with the resolution)
  double gravity = 0.15;                                     // pixels / frame^2 at 32 x 32
  double max_speed = 1.5;                                    // initial speed bound, pixels / frame at 32 x 32
  double push = 0.3;                                         // agent acceleration per unit action
  uint64_t seed = 0;
  double fps = 10.0;
  // Throws std::invalid_argument naming the field: sizes below the minimum, a radius
  // outside (0, 16), a non-finite or implausible gravity, speed, push or frame rate.
  void validate() const;
};

// One clip: frames uint8 [T, H, W, 3] and actions float32 [T, 2] (the agent's push,
// a smooth random walk in [-1, 1]^2).
struct PhysicsClip {
  at::Tensor frames;
  at::Tensor actions;
};
// actions [T, 2], when given, replace the random walk (the same balls and start): the
// world under other actions, for measuring how a model follows them.
PhysicsClip simulate_clip(const PhysicsWorldSpec& spec, int64_t index, const at::Tensor& actions = {});

// Writes spec.clips clips to path in reel's video schema, with its content hash
// (content_sha256, docs/data.md). Throws on bad specs.
void write_physics_world(const std::string& path, const PhysicsWorldSpec& spec);

}  // namespace reel
