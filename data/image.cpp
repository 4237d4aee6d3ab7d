#include "reel/data/image.hpp"

#include <png.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "reel/data/font.hpp"

namespace reel {
namespace {

const std::string kHeaderWord = "frame";  // in the margin of the header row: what its numbers count

}  // namespace

void write_png(const std::string& path, const at::Tensor& image) {
  auto img = image.contiguous().to(at::kByte);
  if (img.dim() != 3 || img.size(2) != 3) throw std::invalid_argument("write_png: need uint8 [H, W, 3]");
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!file) throw std::runtime_error("cannot open " + path + " for writing");
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    throw std::runtime_error("libpng: cannot start writing " + path);
  }
  if (setjmp(png_jmpbuf(png))) {  // libpng reports errors by longjmp
    png_destroy_write_struct(&png, &info);
    throw std::runtime_error("libpng: failed writing " + path);
  }
  const auto h = static_cast<png_uint_32>(img.size(0)), w = static_cast<png_uint_32>(img.size(1));
  png_init_io(png, file.get());
  png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  auto* data = img.data_ptr<uint8_t>();
  for (png_uint_32 y = 0; y < h; ++y) png_write_row(png, data + static_cast<size_t>(y) * w * 3);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
}

GridGeometry grid_geometry(const std::vector<GridRow>& rows, int64_t pad, int64_t zoom, bool header) {
  if (rows.empty()) throw std::invalid_argument("grid: no rows");
  if (pad < 0 || zoom < 1) throw std::invalid_argument("grid: need pad >= 0 and zoom >= 1");
  GridGeometry g;
  g.pad = pad;
  g.rows = int64_t(rows.size());
  for (const auto& r : rows) {
    if (r.frames.dim() != 4 || r.frames.size(3) != 3 || r.first_column < 0) {
      throw std::invalid_argument("grid: row '" + r.label + "' needs frames uint8 [T, H, W, 3] and first_column >= 0");
    }
    if (r.frames.size(1) != rows[0].frames.size(1) || r.frames.size(2) != rows[0].frames.size(2)) {
      throw std::invalid_argument("grid: row '" + r.label + "' has frames of another size than row '" + rows[0].label +
                                  "'");
    }
    g.columns = std::max(g.columns, r.first_column + r.frames.size(0));
  }
  g.cell_h = rows[0].frames.size(1) * zoom;
  g.cell_w = rows[0].frames.size(2) * zoom;
  g.scale = std::clamp<int64_t>(g.cell_h / 24, 1, 4);
  g.row_h = std::max(g.cell_h, kGlyphHeight * g.scale);
  int64_t text = header ? text_width(kHeaderWord, g.scale) : 0;
  for (const auto& r : rows) text = std::max(text, text_width(r.label, g.scale));
  g.margin = text > 0 ? pad + text + pad : pad;
  g.header = header ? pad + kGlyphHeight * g.scale + pad : pad;
  return g;
}

at::Tensor labelled_grid(const std::vector<GridRow>& rows, int64_t pad, int64_t zoom, bool header) {
  const GridGeometry g = grid_geometry(rows, pad, zoom, header);
  auto grid = at::full({g.height(), g.width(), 3}, kGridBackground, at::kByte);
  const int64_t text_h = kGlyphHeight * g.scale;
  for (int64_t i = 0; i < g.rows; ++i) {
    const auto& r = rows[size_t(i)];
    for (int64_t t = 0; t < r.frames.size(0); ++t) {
      auto frame = r.frames[t].to(at::kByte).repeat_interleave(zoom, 0).repeat_interleave(zoom, 1);
      grid.narrow(0, g.cell_y(i), g.cell_h).narrow(1, g.cell_x(r.first_column + t), g.cell_w).copy_(frame);
    }
    draw_text(grid, r.label, pad, g.cell_y(i) + (g.row_h - text_h) / 2, g.scale, kGridText);
  }
  if (!header) return grid;
  draw_text(grid, kHeaderWord, pad, pad, g.scale, kGridText);
  int64_t free_from = g.margin;  // numbers keep one glyph pixel apart; a crowded one is left out
  for (int64_t c = 0; c < g.columns; ++c) {
    const std::string number = std::to_string(c);
    const int64_t w = text_width(number, g.scale), x = g.cell_x(c) + (g.cell_w - w) / 2;
    if (x < free_from || x + w > g.width()) continue;
    draw_text(grid, number, x, pad, g.scale, kGridText);
    free_from = x + w + g.scale;
  }
  return grid;
}

void draw_text(at::Tensor& image, const std::string& text, int64_t x, int64_t y, int64_t scale, uint8_t value) {
  if (image.dim() != 3 || image.size(2) != 3 || image.scalar_type() != at::kByte || !image.is_contiguous()) {
    throw std::invalid_argument("draw_text: need a contiguous uint8 [H, W, 3] image");
  }
  const int64_t w = text_width(text, scale), h = kGlyphHeight * scale;
  if (scale < 1 || x < 0 || y < 0 || x + w > image.size(1) || y + h > image.size(0)) {
    throw std::invalid_argument("draw_text: '" + text + "' at scale " + std::to_string(scale) + " does not fit at (" +
                                std::to_string(x) + ", " + std::to_string(y) + ") in a " +
                                std::to_string(image.size(1)) + "x" + std::to_string(image.size(0)) + " image");
  }
  auto px = image.accessor<uint8_t, 3>();
  for (size_t i = 0; i < text.size(); ++i) {
    const int64_t left = x + int64_t(i) * kGlyphAdvance * scale;
    for (int64_t gy = 0; gy < kGlyphHeight; ++gy) {
      for (int64_t gx = 0; gx < kGlyphWidth; ++gx) {
        if (!glyph_pixel(text[i], gx, gy)) continue;
        for (int64_t dy = 0; dy < scale; ++dy) {
          for (int64_t dx = 0; dx < scale; ++dx) {
            for (int64_t ch = 0; ch < 3; ++ch) px[y + gy * scale + dy][left + gx * scale + dx][ch] = value;
          }
        }
      }
    }
  }
}

at::Tensor video_to_frames(const at::Tensor& video) {
  return video.detach()
      .cpu()
      .add(1.0)
      .mul(127.5)
      .round()
      .clamp(0, 255)
      .to(at::kByte)
      .permute({0, 2, 3, 1})
      .contiguous();
}

}  // namespace reel
