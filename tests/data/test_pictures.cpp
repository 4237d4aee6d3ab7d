// Pictures that read without the README: the sample grids' row labels and frame numbers
// land where the geometry says (and nowhere else), frames line up by time, the font draws
// its glyphs as written, and sample paths have one separator whatever --out ends with.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <filesystem>

#include "reel/data/font.hpp"
#include "reel/data/image.hpp"
#include "reel/data/physics_world.hpp"
#include "reel/data/samples.hpp"
#include "reel/model/config.hpp"
#include "reel/model/world_model.hpp"

namespace reel::test {
namespace {

// Pixels of `image` [H, W, 3] in the box [x0, x1) x [y0, y1) that are not the background.
int64_t lit(const at::Tensor& image, int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
  return image.narrow(0, y0, y1 - y0).narrow(1, x0, x1 - x0).ne(kGridBackground).any(2).sum().item<int64_t>();
}

int64_t glyph_pixels(const std::string& text) {
  int64_t n = 0;
  for (char c : text) {
    for (int64_t y = 0; y < kGlyphHeight; ++y) {
      for (int64_t x = 0; x < kGlyphWidth; ++x) n += glyph_pixel(c, x, y);
    }
  }
  return n;
}

// A clip [T, 16, 16, 3] filled with one value (never the background).
at::Tensor solid_clip(int64_t frames, uint8_t value) { return at::full({frames, 16, 16, 3}, value, at::kByte); }

// The rows `reel sample` draws for the tiny preset: 4 context frames, then 4 more.
std::vector<GridRow> sample_like_rows() {
  return {GridRow{"context", solid_clip(4, 100), 0}, GridRow{"predicted", solid_clip(4, 120), 4},
          GridRow{"truth", solid_clip(4, 140), 4}, GridRow{"reversed", solid_clip(4, 160), 4}};
}

TEST(Pictures, TheFontDrawsItsGlyphsAsWrittenAndRefusesOthers) {
  // The digit 1 at scale 2, pixel for pixel (the glyph as data/font.cpp writes it).
  const char* one[] = {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."};
  auto image = at::full({20, 16, 3}, kGridBackground, at::kByte);
  draw_text(image, "1", 3, 4, 2, kGridText);
  for (int64_t y = 0; y < 20; ++y) {
    for (int64_t x = 0; x < 16; ++x) {
      const int64_t gx = (x - 3) / 2, gy = (y - 4) / 2;
      const bool inside = x >= 3 && y >= 4 && gx < kGlyphWidth && gy < kGlyphHeight;
      const bool want = inside && one[gy][gx] == '#';
      EXPECT_EQ(image[y][x][0].item<int>(), want ? kGridText : kGridBackground) << "pixel (" << x << ", " << y << ")";
    }
  }
  // Every character the labels and numbers use has a glyph with something in it.
  for (char c : std::string("contextpredictedtruthreversedframe0123456789")) {
    ASSERT_TRUE(font_has(c)) << c;
    EXPECT_GT(glyph_pixels(std::string(1, c)), 4) << c;
  }
  EXPECT_FALSE(font_has('Q'));
  try {
    draw_text(image, "Q", 0, 0, 1, kGridText);
    ADD_FAILURE() << "no error for a character without a glyph";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no glyph for 'Q'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(draw_text(image, "11", 10, 0, 2, kGridText), std::invalid_argument);  // runs off the right edge
  EXPECT_EQ(text_width("predicted", 2), (9 * 6 - 1) * 2);
}

TEST(Pictures, AGridHasALabelMarginAndAFrameHeaderOfTheRightSize) {
  const auto rows = sample_like_rows();
  const auto g = grid_geometry(rows, 2, 4, true);
  // 16 x 16 frames at zoom 4: 64-pixel cells, glyphs scaled 2 (14 pixels high).
  EXPECT_EQ(g.scale, 2);
  EXPECT_EQ(g.columns, 8);
  EXPECT_EQ(g.margin, 2 + text_width("predicted", 2) + 2);  // the widest label
  EXPECT_EQ(g.header, 2 + 14 + 2);
  const auto grid = labelled_grid(rows, 2, 4);
  EXPECT_EQ(grid.size(1), g.margin + 8 * (64 + 2));
  EXPECT_EQ(grid.size(0), g.header + 4 * (64 + 2));
  EXPECT_EQ(grid.size(1), 110 + 8 * 66);
  // Without labels or header the grid is frames and gaps only, as before.
  std::vector<GridRow> bare = {GridRow{"", solid_clip(2, 100), 0}};
  const auto plain = labelled_grid(bare, 2, 1, false);
  EXPECT_EQ(plain.size(0), 2 + 16 + 2);
  EXPECT_EQ(plain.size(1), 2 + 2 * (16 + 2));
}

TEST(Pictures, LabelsAreInTheirRowsAndFramesLineUpByTime) {
  const auto rows = sample_like_rows();
  const auto g = grid_geometry(rows, 2, 4, true);
  const auto grid = labelled_grid(rows, 2, 4);
  const int64_t text_h = kGlyphHeight * g.scale;
  int64_t label_pixels = 0;
  for (int64_t i = 0; i < g.rows; ++i) {
    const auto& label = rows[size_t(i)].label;
    const int64_t y = g.cell_y(i) + (g.row_h - text_h) / 2, w = text_width(label, g.scale);
    // The label's box holds exactly its glyphs' pixels, scaled; the margin beside it nothing.
    EXPECT_EQ(lit(grid, 2, y, 2 + w, y + text_h), glyph_pixels(label) * g.scale * g.scale) << label;
    label_pixels += lit(grid, 0, g.cell_y(i), g.margin, g.cell_y(i) + g.row_h);
    EXPECT_EQ(lit(grid, 0, g.cell_y(i), g.margin, g.cell_y(i) + g.row_h), lit(grid, 2, y, 2 + w, y + text_h)) << label;
    // Frame t of the row lies in column first_column + t; the other columns are empty.
    for (int64_t c = 0; c < g.columns; ++c) {
      auto cell = grid.narrow(0, g.cell_y(i), g.cell_h).narrow(1, g.cell_x(c), g.cell_w);
      const int64_t t = c - rows[size_t(i)].first_column;
      const bool has = t >= 0 && t < rows[size_t(i)].frames.size(0);
      EXPECT_TRUE(cell.eq(has ? 100 + 20 * i : kGridBackground).all().item<bool>()) << label << " column " << c;
    }
  }
  // Nothing else in the margin below the header: not in the gaps, not from the frames.
  EXPECT_EQ(lit(grid, 0, g.header, g.margin, g.height()), label_pixels);
  // The header: "frame" over the margin, number c centred over column c, in the header only.
  EXPECT_EQ(lit(grid, 0, 0, g.margin, g.header), glyph_pixels("frame") * g.scale * g.scale);
  for (int64_t c = 0; c < g.columns; ++c) {
    const std::string n = std::to_string(c);
    const int64_t w = text_width(n, g.scale), x = g.cell_x(c) + (g.cell_w - w) / 2;
    EXPECT_EQ(lit(grid, x, 2, x + w, 2 + text_h), glyph_pixels(n) * g.scale * g.scale) << "column " << c;
    EXPECT_EQ(lit(grid, g.cell_x(c), 0, g.cell_x(c) + g.cell_w + 2, g.header), lit(grid, x, 2, x + w, 2 + text_h));
  }
}

TEST(Pictures, ASamplePathHasOneSeparatorWhateverTheFolderEndsWith) {
  EXPECT_EQ(sample_path("samples/", 1024), "samples/sample_1024.png");
  EXPECT_EQ(sample_path("samples", 1024), "samples/sample_1024.png");
  EXPECT_EQ(sample_path("samples//", 3), "samples/sample_3.png");
  EXPECT_EQ(sample_path("/tmp/runs//tiny/samples/", 3), "/tmp/runs/tiny/samples/sample_3.png");
  EXPECT_EQ(sample_path("./a/../b/", 3), "./a/../b/sample_3.png");  // "." and ".." kept as given
  EXPECT_EQ(sample_path("", 3), "sample_3.png");
}

// The pixels of a PNG file, uint8 [H, W, 3] (libpng's simplified reader).
at::Tensor read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) throw std::runtime_error(path + ": " + image.message);
  image.format = PNG_FORMAT_RGB;
  auto pixels = at::empty({int64_t(image.height), int64_t(image.width), 3}, at::kByte);
  if (!png_image_finish_read(&image, nullptr, pixels.data_ptr<uint8_t>(), 0, nullptr)) {
    throw std::runtime_error(path + ": " + image.message);
  }
  return pixels;
}

TEST(Pictures, WriteSamplesNamesItsFilesCleanlyAndLabelsThem) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("reel_pictures_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  PhysicsWorldSpec world;
  world.clips = 3;
  world.seed = 5;
  write_physics_world((dir.string() + ".h5"), world);
  const ModelConfig cfg = model_preset("tiny");
  WorldModel model(cfg);
  init_model(*model, 7);
  model->eval();
  SampleOptions options;
  options.pictures = 1;
  options.rollout.steps = 1;
  const auto report = write_samples(*model, dir.string() + ".h5", 1, 2, dir.string() + "/out/", options);
  ASSERT_EQ(report.files.size(), 1u);
  EXPECT_EQ(report.files[0], (dir / "out" / "sample_1.png").string());
  EXPECT_EQ(report.files[0].find("//"), std::string::npos) << report.files[0];
  const auto png = read_png(report.files[0]);
  // The tiny preset: 4 context frames + 4 predicted, 16 x 16 at the default zoom 4.
  std::vector<GridRow> rows = sample_like_rows();
  const auto g = grid_geometry(rows, 2, options.zoom, true);
  EXPECT_EQ(png.size(1), g.width());
  EXPECT_EQ(png.size(0), g.height());
  const int64_t text_h = kGlyphHeight * g.scale;
  for (int64_t i = 0; i < g.rows; ++i) {
    const auto& label = rows[size_t(i)].label;
    const int64_t y = g.cell_y(i) + (g.row_h - text_h) / 2;
    EXPECT_EQ(lit(png, 2, y, 2 + text_width(label, g.scale), y + text_h), glyph_pixels(label) * g.scale * g.scale)
        << label;
  }
  fs::remove_all(dir);
  fs::remove(dir.string() + ".h5");
}

}  // namespace
}  // namespace reel::test
