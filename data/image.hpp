// Pictures: PNG files (libpng), and grids of frames with a row label on the left of each row
// and the frame number above each column (text in the 5 x 7 font of data/font.hpp).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace reel {

// image uint8 [H, W, 3]. Throws std::runtime_error naming the path on failure.
void write_png(const std::string& path, const at::Tensor& image);

// One row of a grid: a clip uint8 [T, H, W, 3] (T may be 0) whose frame t lies in column
// first_column + t, so rows covering different times line up under one time axis.
struct GridRow {
  std::string label;  // drawn in the left margin; characters from data/font.hpp
  at::Tensor frames;
  int64_t first_column = 0;
};

// Where everything lies in a grid picture uint8 [height(), width(), 3]: a left margin of
// labels, a header of column numbers on top, then cells of cell_h x cell_w (frames after
// zoom) with `pad` pixels of gap between and after them.
struct GridGeometry {
  int64_t pad = 2, cell_h = 0, cell_w = 0;
  int64_t rows = 0, columns = 0;
  int64_t scale = 1;   // integer scale of the glyphs: cell_h / 24, in [1, 4]
  int64_t row_h = 0;   // max(cell_h, glyph height): a row always holds its label
  int64_t margin = 0;  // pad + widest label (or "frame") + pad; just pad with no text
  int64_t header = 0;  // pad + glyph height + pad; just pad without a header

  int64_t cell_x(int64_t column) const { return margin + column * (cell_w + pad); }
  int64_t cell_y(int64_t row) const { return header + row * (row_h + pad); }
  int64_t width() const { return cell_x(columns); }
  int64_t height() const { return cell_y(rows); }
};

GridGeometry grid_geometry(const std::vector<GridRow>& rows, int64_t pad, int64_t zoom, bool header);

// The grid of `rows` top to bottom, each frame scaled up `zoom` times (nearest neighbour)
// so small worlds are visible. Background kGridBackground, text kGridText. With `header`,
// column c is numbered c above it ("frame" in the margin), numbers that would touch their
// neighbour left out. Throws std::invalid_argument for rows of differing frame sizes.
constexpr uint8_t kGridBackground = 40, kGridText = 230;
at::Tensor labelled_grid(const std::vector<GridRow>& rows, int64_t pad = 2, int64_t zoom = 1, bool header = true);

// Draws `text` into image uint8 [H, W, 3] with its top-left corner at (x, y), each glyph
// pixel a scale x scale square of `value` in every channel. Throws std::invalid_argument
// when the text does not fit inside the image or a character has no glyph.
void draw_text(at::Tensor& image, const std::string& text, int64_t x, int64_t y, int64_t scale, uint8_t value);

// float video [T, C, H, W] in [-1, 1] -> uint8 [T, H, W, C].
at::Tensor video_to_frames(const at::Tensor& video);

}  // namespace reel
