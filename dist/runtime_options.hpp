// The runtime options every reel subcommand that starts ranks shares, one spelling for
// all of them: dist.backend, dist.threads, dist.verify, dist.timeout, log.level, log.all_ranks,
// log.dir. A visitor over (key, field, help) so that option parsers and configuration
// writers list the same keys with the same defaults (the structs' own). A mode's choices
// come from its enum's names (dist/enum_names.hpp): its help says only what they mean.
#pragma once

#include "reel/dist/logging.hpp"
#include "reel/dist/runtime.hpp"

namespace reel {

template <typename Visit>
void visit_runtime_options(RuntimeConfig& r, LogConfig& l, Visit&& v) {
  v("dist.backend", r.backend, "auto: NCCL where the rank has a GPU");
  v("dist.threads", r.threads, "intra-op threads per rank (0: cores / ranks on the host)");
  v("dist.verify", r.comm.verify_consistency, "check that every rank makes the same call with the same sizes");
  v("dist.desync_every", r.desync_every,
    "train: every N steps the ranks compare fingerprints of their collectives (0: never)");
  v("dist.timeout", r.timeout_s,
    "seconds one communication may block before the rank dumps its recent collectives and aborts the job (0: never)");
  v("dist.node_timeout", r.node_timeout_s,
    "seconds a node may stop answering before the job ends naming it (more than one node; 0: never)");
  v("log.level", l.level, "the lowest level printed");
  v("log.all_ranks", l.all_ranks, "every rank prints, not only rank 0");
  v("log.dir", l.dir, "also log every rank to DIR/rank<R>.log");
  v("log.trace", l.trace,
    "train: record a timeline of every rank over steps A-B (or one step A; 1-based) into "
    "RUN_DIR/trace/trace.json (Chrome trace / Perfetto; one file per rank beside it; empty: off)");
}

}  // namespace reel
