// reel hang's output: a report as lines for a person, or as JSON for tools (the analysis:
// dist/hang_report.cpp).
#include <nlohmann/json.hpp>

#include <sstream>

#include "reel/dist/hang_report.hpp"

namespace reel::hang {

using detail::contains;
using detail::ranks_word;

namespace {

// At most 16 ranks of a list, for a person: a 1,000-rank job's line stays a line.
std::string short_list(const std::vector<int>& ranks) {
  constexpr size_t kShown = 16;
  if (ranks.size() <= kShown) return ranks_word(ranks);
  return ranks_word(std::vector<int>(ranks.begin(), ranks.begin() + kShown)) + ",... (" +
         std::to_string(ranks.size() - kShown) + " more)";
}

// "all_to_all #57 on sp (2 ranks), 8192 bytes (Float [2, 4, 16, 16]), waited 6 s"
std::string headline(const Stuck& s) {
  std::string out = s.call.name();
  if (s.group_size > 0) out += " (" + std::to_string(s.group_size) + (s.group_size == 1 ? " rank)" : " ranks)");
  if (s.call.bytes >= 0) out += ", " + std::to_string(s.call.bytes) + " bytes";
  if (!s.call.detail.empty()) out += " (" + s.call.detail + ")";
  return out + ", waited " + std::to_string(s.waited_s) + " s";
}

}  // namespace

std::string to_text(const Report& r) {
  std::ostringstream out;
  out << r.dumped.size() << " of " << r.world_size << " ranks wrote a dump";
  if (!r.no_dump.empty()) out << "; no dump from " << short_list(r.no_dump);
  out << "\n";
  for (size_t i = 0; i < r.stuck.size(); ++i) {
    const Stuck& s = r.stuck[i];
    out << (i == 0 ? "stuck in: " : "also stuck: ") << headline(s) << "\n";
    out << "  entered: " << (s.entered.empty() ? "-" : short_list(s.entered)) << "\n";
    if (s.never_entered.empty()) continue;
    out << "  never entered" << (s.group_known ? "" : " (group unknown: the ranks behind on " + s.call.comm + ")")
        << ":\n";
    for (int q : s.never_entered) {
      const RankState& st = r.ranks[q];
      out << "    rank " << q << (st.host.empty() ? "" : " (" + st.host + ")") << ": ";
      const auto last = s.last_before.find(q);
      if (last != s.last_before.end()) {
        out << (last->second.seq < 0 ? "issued nothing on " + s.call.comm + " yet"
                                     : "last issued " + last->second.name());
        out << "; ";
      }
      out << st.doing;
      if (contains(r.likely_cause, q)) out << " — the likely cause";
      out << "\n";
    }
  }
  if (r.stuck.empty()) out << "no dump names a collective it waits in (an older reel's dumps?)\n";
  if (!r.explanation.empty()) out << "why: " << r.explanation << "\n";
  if (!r.likely_cause.empty()) out << "likely cause: " << short_list(r.likely_cause) << " (no dump)\n";
  for (const auto& n : r.notes) out << "note: " << n << "\n";
  return out.str();
}

std::string to_json(const Report& r) {
  using nlohmann::json;
  auto call = [](const Call& c) {
    return json{{"comm", c.comm}, {"op", c.op}, {"seq", c.seq}, {"bytes", c.bytes}, {"detail", c.detail}};
  };
  json j{{"world_size", r.world_size},
         {"world_size_from", r.world_size_from},
         {"dumped", r.dumped},
         {"no_dump", r.no_dump},
         {"files", r.files},
         {"likely_cause", r.likely_cause},
         {"explanation", r.explanation},
         {"notes", r.notes}};
  j["stuck"] = json::array();
  for (const auto& s : r.stuck) {
    json last_before = json::array();
    for (const auto& [rank, c] : s.last_before) last_before.push_back({{"rank", rank}, {"call", call(c)}});
    j["stuck"].push_back({{"call", call(s.call)},
                          {"waiting", s.waiting},
                          {"entered", s.entered},
                          {"never_entered", s.never_entered},
                          {"last_before", last_before},
                          {"group_known", s.group_known},
                          {"group_size", s.group_size},
                          {"waited_s", s.waited_s}});
  }
  j["ranks"] = json::array();
  for (const auto& st : r.ranks) {
    j["ranks"].push_back(
        {{"rank", st.rank}, {"dumped", st.dumped}, {"host", st.host}, {"stuck", st.stuck}, {"doing", st.doing}});
  }
  return j.dump(2) + "\n";
}

}  // namespace reel::hang
