// NodeMonitor: a node that stops answering ends the job within dist.node_timeout, with a
// message naming it and its ranks, instead of a silent hang.
//
// Why: when a node is cut off or dies mid-step, Open MPI's ranks on the other nodes do not
// fail — they block in their next collective (a cut link) or hang after "failed to TCP
// connect" — and srun does not exit on its own. The hang watchdog (dist/watchdog.hpp)
// ends such a job after dist.timeout, which must be long enough for a checkpoint's slow
// collectives, and can only say which collective stalled, not why.
//
// How: the first rank of every node (ranks sharing a host name share a node) listens on a
// TCP port of its host's address; every rank learns every node's address at start-up
// (one all-gather over world). Each node's first rank probes its neighbour nodes in node
// order (the previous and the next: every node of three or more is watched by two, and a
// job of N nodes makes 2N probes per interval, not N^2) by opening a connection, once per
// interval. A node none of whose probes has succeeded for the timeout is reported as lost:
// "refused" (the address answers, the process is gone) or "timed out" (the link is down
// or the node is gone). The report goes to the loss handler (reel's ends the job; then
// slurm/train.sbatch starts the run again on the nodes left, from the newest complete
// checkpoint). Addresses: $REEL_NODE_ADDRESS, else the host name's (a loopback one is
// replaced by the first other interface's); at start-up every node's first rank must
// reach its neighbours, or the monitor stays off on every rank with a warning naming the
// node (a monitor that cannot reach a healthy node would end every job). A job on one
// node starts nothing. The connections carry no data; nothing here touches MPI or the
// training threads after start-up.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "reel/dist/communicator.hpp"

namespace reel {

class NodeMonitor {
 public:
  // Collective over world (an all-gather, and with several nodes an all-reduce of the
  // start-up check). timeout 0: nothing is started (the watchdog alone remains).
  // Throws std::runtime_error when this node's first rank cannot listen.
  static void start(Communicator& world, std::chrono::seconds timeout,
                    std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  // Called once, on the monitor's thread, with the report. Library code never ends the
  // process itself: without a handler the report is printed to stderr and probing stops.
  static void set_loss_handler(std::function<void(const std::string&)> handler);
  // Where the report also goes, as DIR/node_lost.NODE.txt (NODE: this node, which noticed
  // the loss): the lost node's name on the first line, the report on the second
  // (slurm/train.sbatch reads its own node's). Empty: stderr only.
  static void set_report_dir(const std::string& dir);
  // Ends probing (no report after this returns): call it once the job's last collective
  // is done, before ranks leave at different times (a node whose ranks have exited would
  // look lost to one still writing its plot). Idempotent; thread-safe.
  static void stop();
  // Probes the neighbour nodes once (up to 2 s in all), for the hang watchdog's dump: one
  // line per node that does not answer, "" when all do or nothing was started.
  static std::string probe_all();
};

}  // namespace reel
