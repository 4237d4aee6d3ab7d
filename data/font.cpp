// The glyphs of data/font.hpp, drawn for reel: 5 x 7 pixels each, '#' lit, '.' blank,
// row 0 at the top, the baseline on row 6 (p's tail is folded into the last two rows).
// Covers exactly: lowercase a c d e f h i m n o p r s t u v x and the digits 0-9 -
// the row labels "context", "predicted", "truth", "reversed", the header word "frame" and
// frame numbers. Anything else is refused, so a new label must add its glyphs here.
#include "reel/data/font.hpp"

#include <stdexcept>

namespace reel {
namespace {

struct Glyph {
  char c;
  const char* rows[kGlyphHeight];
};

// clang-format off
constexpr Glyph kGlyphs[] = {
  {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
  {'c', {".....", ".....", ".####", "#....", "#....", "#....", ".####"}},
  {'d', {"....#", "....#", ".####", "#...#", "#...#", "#...#", ".####"}},
  {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
  {'f', {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."}},
  {'h', {"#....", "#....", "####.", "#...#", "#...#", "#...#", "#...#"}},
  {'i', {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}},
  {'m', {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#.#.#", "#.#.#"}},
  {'n', {".....", ".....", "####.", "#...#", "#...#", "#...#", "#...#"}},
  {'o', {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}},
  {'p', {".....", ".....", "####.", "#...#", "####.", "#....", "#...."}},
  {'r', {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}},
  {'s', {".....", ".....", ".####", "#....", ".###.", "....#", "####."}},
  {'t', {".#...", ".#...", "####.", ".#...", ".#...", ".#..#", "..##."}},
  {'u', {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}},
  {'v', {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
  {'x', {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}},
  {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
  {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
  {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
  {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
  {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
  {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
  {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
  {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
  {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
  {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
};
// clang-format on

const Glyph* find_glyph(char c) {
  for (const auto& g : kGlyphs) {
    if (g.c == c) return &g;
  }
  return nullptr;
}

}  // namespace

bool font_has(char c) { return find_glyph(c) != nullptr; }

bool glyph_pixel(char c, int64_t x, int64_t y) {
  const Glyph* g = find_glyph(c);
  if (!g) {
    throw std::invalid_argument(
        std::string("the picture font has no glyph for '") + c +
        "' (data/font.cpp covers lowercase a c d e f h i m n o p r s t u v x and 0-9; add it there)");
  }
  if (x < 0 || x >= kGlyphWidth || y < 0 || y >= kGlyphHeight) return false;
  return g->rows[y][x] == '#';
}

int64_t text_width(const std::string& text, int64_t scale) {
  if (text.empty()) return 0;
  return (int64_t(text.size()) * kGlyphAdvance - 1) * scale;
}

}  // namespace reel
