// A tiny bitmap font for the words drawn into pictures (the sample grids' row labels and
// column header): 5 x 7 glyphs for exactly the characters those words use.
#pragma once

#include <cstdint>
#include <string>

namespace reel {

constexpr int64_t kGlyphWidth = 5, kGlyphHeight = 7;
constexpr int64_t kGlyphAdvance = kGlyphWidth + 1;  // one blank column between glyphs

// Whether the font has a glyph for `c` (data/font.cpp lists the characters).
bool font_has(char c);

// Whether pixel (x, y) of c's glyph is lit; x in [0, 5), y in [0, 7), row 0 at the top.
// Throws std::invalid_argument naming the character when the font has no glyph for it.
bool glyph_pixel(char c, int64_t x, int64_t y);

// Width in pixels of `text` drawn at `scale` (no trailing gap): 0 for empty text.
int64_t text_width(const std::string& text, int64_t scale);

}  // namespace reel
