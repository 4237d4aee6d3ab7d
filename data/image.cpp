#include "data/image.hpp"

#include <png.h>

#include <cstdio>
#include <memory>
#include <stdexcept>

namespace reel {

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

at::Tensor frame_grid(const std::vector<at::Tensor>& rows, int64_t pad, int64_t zoom) {
  if (rows.empty()) throw std::invalid_argument("frame_grid: no rows");
  const int64_t h = rows[0].size(1) * zoom, w = rows[0].size(2) * zoom;
  int64_t cols = 0;
  for (const auto& r : rows) cols = std::max(cols, r.size(0));
  auto grid = at::full({pad + int64_t(rows.size()) * (h + pad), pad + cols * (w + pad), 3}, 40, at::kByte);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t t = 0; t < rows[i].size(0); ++t) {
      auto frame = rows[i][t].repeat_interleave(zoom, 0).repeat_interleave(zoom, 1);
      grid.narrow(0, pad + int64_t(i) * (h + pad), h).narrow(1, pad + t * (w + pad), w).copy_(frame);
    }
  }
  return grid;
}

at::Tensor video_to_frames(const at::Tensor& video) {
  return video.detach().cpu().add(1.0).mul(127.5).round().clamp(0, 255).to(at::kByte).permute({0, 2, 3, 1}).contiguous();
}

}  // namespace reel
