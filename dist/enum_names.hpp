// Named enums: each enum has one table of (value, name) pairs, and that table alone is
// used to parse its text (the command line, INI files, files that store it as text), to
// print it (--help's choices, the written config.ini, logs) and to word the error that
// names the option and the choices. The table is declared beside the enum, as a function
// argument-dependent lookup finds:
//
//   enum class SpBalance { kZigzag, kContiguous };
//   constexpr EnumNames<SpBalance, 2> enum_names(SpBalance) {
//     return {{{SpBalance::kZigzag, "zigzag"}, {SpBalance::kContiguous, "contiguous"}}};
//   }
//   parse_enum<SpBalance>("parallel.sp_balance", "zigzag")  // SpBalance::kZigzag
//   enum_name(SpBalance::kContiguous)                        // "contiguous"
//   enum_choices<SpBalance>()                                // "zigzag or contiguous"
//
// Header-only and free of reel's libraries, like require.hpp, so that model/ may use it.
#pragma once

#include <array>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace reel {

template <typename E, size_t N>
using EnumNames = std::array<std::pair<E, const char*>, N>;

// Whether E is an enum with a names table.
template <typename E, typename = void>
struct HasEnumNames : std::false_type {};
template <typename E>
struct HasEnumNames<E, std::void_t<decltype(enum_names(E{}))>> : std::is_enum<E> {};

// The value's name; "?" for a value outside the table (a cast), which never parses back.
template <typename E>
const char* enum_name(E value) {
  for (const auto& [v, name] : enum_names(E{})) {
    if (v == value) return name;
  }
  return "?";
}

// The names in table order: "a, b or c" by default, or joined by `separator` ("a | b | c").
template <typename E>
std::string enum_choices(const char* separator = nullptr) {
  const auto names = enum_names(E{});
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += separator ? separator : i + 1 == names.size() ? " or " : ", ";
    out += names[i].second;
  }
  return out;
}

// The value named `text`; anything else throws std::invalid_argument naming `key` (the
// option or field) and the choices: "parallel.sp_mode must be ulysses, ring or hybrid, got 'x'".
template <typename E>
E parse_enum(const std::string& key, const std::string& text) {
  for (const auto& [v, name] : enum_names(E{})) {
    if (text == name) return v;
  }
  throw std::invalid_argument(key + " must be " + enum_choices<E>() + ", got '" + text + "'");
}

// Prints a named enum by its name (config.ini, logs, messages).
template <typename E, typename = std::enable_if_t<HasEnumNames<E>::value>>
std::ostream& operator<<(std::ostream& out, E value) {
  return out << enum_name(value);
}

}  // namespace reel
