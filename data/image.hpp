// Pictures: PNG files (libpng) and grids of frames.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace reel {

// image uint8 [H, W, 3]. Throws std::runtime_error naming the path on failure.
void write_png(const std::string& path, const at::Tensor& image);

// rows: each a clip uint8 [T, H, W, 3] (rows may differ in T; missing frames stay blank).
// Frames are laid left to right (time), rows top to bottom, with `pad` pixels of gap, each
// frame scaled up `zoom` times (nearest neighbour) so small worlds are visible.
at::Tensor frame_grid(const std::vector<at::Tensor>& rows, int64_t pad = 2, int64_t zoom = 1);

// float video [T, C, H, W] in [-1, 1] -> uint8 [T, H, W, C].
at::Tensor video_to_frames(const at::Tensor& video);

}  // namespace reel
