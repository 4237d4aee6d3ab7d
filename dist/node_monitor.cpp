#include "reel/dist/node_monitor.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "reel/dist/error.hpp"

namespace reel {
namespace {

using Clock = std::chrono::steady_clock;

// One node as every rank sees it: where its first rank listens, and its ranks.
struct Node {
  std::string name;
  uint32_t address = 0;  // IPv4, network byte order
  uint16_t port = 0;     // network byte order
  std::vector<int> ranks;
};

struct State {
  std::mutex mutex;
  std::function<void(const std::string&)> on_loss;
  std::string report_dir;
  std::vector<Node> nodes;   // in order of their lowest world rank
  int self = -1;             // this rank's node
  std::vector<int> targets;  // the neighbour nodes it watches
  bool started = false;
  std::atomic<bool> stopped{false};
};

State& state() {
  static State* s = new State;  // never destroyed: the detached thread may outlive main()
  return *s;
}

bool loopback(uint32_t address) { return (ntohl(address) >> 24) == 127; }

// This host's IPv4 address as other nodes reach it: $REEL_NODE_ADDRESS when set; else the
// host name's address (/etc/hosts or DNS, as Slurm's NodeAddr and Open MPI's TCP use),
// unless that is loopback (Debian's 127.0.1.1 line), then the first non-loopback
// interface's. start() checks that the neighbours answer at it before relying on it.
uint32_t host_address() {
  in_addr given{};
  if (const char* text = std::getenv("REEL_NODE_ADDRESS"); text && ::inet_pton(AF_INET, text, &given) == 1) {
    return given.s_addr;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  uint32_t address = htonl(INADDR_LOOPBACK);
  if (getaddrinfo(host_name().c_str(), nullptr, &hints, &found) == 0 && found) {
    address = reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr.s_addr;
  }
  if (found) freeaddrinfo(found);
  ifaddrs* interfaces = nullptr;
  if (loopback(address) && ::getifaddrs(&interfaces) == 0) {
    for (ifaddrs* i = interfaces; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      const uint32_t a = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
      if (!loopback(a)) {
        address = a;
        break;
      }
    }
    ::freeifaddrs(interfaces);
  }
  return address;
}

// A listening socket on an ephemeral port of every address; returns (fd, port).
std::pair<int, uint16_t> listen_any() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(where("NodeMonitor") + ": cannot listen on a TCP port: " + why);
  }
  return {fd, addr.sin_port};
}

// One connection attempt, bounded by `limit`: "" when it was accepted, else why not.
std::string probe(const Node& node, std::chrono::milliseconds limit) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::string("no socket: ") + std::strerror(errno);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = node.address;
  addr.sin_port = node.port;
  std::string why;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) {
      why = std::strerror(errno);
    } else {
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(limit.count()));
      int err = 0;
      socklen_t len = sizeof err;
      if (ready == 0) {
        why = "connection timed out";
      } else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        why = std::strerror(err ? err : errno);
      }
    }
  }
  ::close(fd);
  return why;
}

std::string describe(const Node& node) {
  std::string ranks;
  for (size_t i = 0; i < node.ranks.size(); ++i) ranks += (i ? "," : "") + std::to_string(node.ranks[i]);
  char ip[INET_ADDRSTRLEN] = "?";
  in_addr a{node.address};
  ::inet_ntop(AF_INET, &a, ip, sizeof ip);
  return "node " + node.name + " (" + ip + ", rank" + (node.ranks.size() > 1 ? "s " : " ") + ranks + ")";
}

std::string loss_report(const Node& node, std::chrono::seconds silent, const std::string& why) {
  const bool gone = why.find("refused") != std::string::npos;
  return "node lost: " + describe(node) + " has not answered for " + std::to_string(silent.count()) + " s (" + why +
         (gone ? ": the node answers but reel's process there is gone" : ": its link is down or the node is gone") +
         "), seen from rank " + std::to_string(world_rank_or_unknown()) + " on " + host_name() +
         ". Ending the job: the ranks there cannot take part in any collective again";
}

// Ends the job over node `t`: the report to the run directory and the handler, holding the
// lock throughout so that stop() cannot return in between (the handler does not return).
void report_loss(State& s, int t, std::chrono::seconds silent, const std::string& why) {
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.stopped.load()) return;  // the job ended while this probe ran
  const std::string report = loss_report(s.nodes[t], silent, why);
  // One file per node that noticed: in a partition both sides see the other as lost; the
  // batch script trusts its own node's view first.
  if (!s.report_dir.empty()) {
    std::ofstream(s.report_dir + "/node_lost." + node_name() + ".txt") << s.nodes[t].name << "\n" << report << "\n";
  }
  if (s.on_loss) {
    s.on_loss(report);
  } else {
    std::cerr << "reel: " << report << std::endl;
  }
}

// The probing thread of a node's first rank: accepts the neighbours' probes and probes them.
void watch(int listener, std::vector<int> targets, std::chrono::seconds timeout, std::chrono::milliseconds interval) {
  State& s = state();
  std::map<int, Clock::time_point> last_answer;
  for (int t : targets) last_answer[t] = Clock::now();
  auto next_probe = Clock::now(), last_turn = Clock::now();
  while (!s.stopped.load()) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      int fd;
      while ((fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0) ::close(fd);
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // EMFILE: back off
    }
    // A turn far longer than the interval: this process was stopped (scontrol suspend) or
    // starved. Its clocks start again, like the watchdog's: silence it slept through is not a loss.
    if (Clock::now() - last_turn > interval + std::chrono::seconds(3)) {
      for (auto& [t, at] : last_answer) at = Clock::now();
    }
    last_turn = Clock::now();
    if (Clock::now() < next_probe) continue;
    next_probe = Clock::now() + interval;
    for (int t : targets) {
      const std::string why = probe(s.nodes[t], std::min(interval, std::chrono::milliseconds(1000)));
      if (why.empty()) {
        last_answer[t] = Clock::now();
        continue;
      }
      const auto silent = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - last_answer[t]);
      if (silent < timeout) continue;
      report_loss(s, t, silent, why);
      ::close(listener);
      return;  // one report per process
    }
  }
  ::close(listener);
}

// Every rank's (host name, address, port) over world: the node table, in placement order.
std::vector<Node> gather_nodes(Communicator& world, uint32_t address, uint16_t port, int* self) {
  constexpr int kName = 248;  // + 4 address + 2 port + 2 padding = 256 bytes per rank
  auto mine = at::zeros({256}, at::kByte);
  auto* p = mine.data_ptr<uint8_t>();
  std::memcpy(p, node_name().data(), std::min<size_t>(node_name().size(), kName - 1));
  std::memcpy(p + kName, &address, 4);
  std::memcpy(p + kName + 4, &port, 2);
  auto all = at::empty({world.size() * 256}, at::TensorOptions(at::kByte).device(world.device()));
  world.all_gather(mine.to(world.device()), all);
  const auto cpu = all.cpu();
  std::vector<Node> nodes;
  std::map<std::string, int> index;
  for (int r = 0; r < world.size(); ++r) {
    const uint8_t* q = cpu.data_ptr<uint8_t>() + r * 256;
    const std::string name(reinterpret_cast<const char*>(q));
    auto [it, fresh] = index.emplace(name, static_cast<int>(nodes.size()));
    if (fresh) {  // the node's first rank is the one that listens
      Node n;
      n.name = name;
      std::memcpy(&n.address, q + kName, 4);
      std::memcpy(&n.port, q + kName + 4, 2);
      nodes.push_back(n);
    }
    nodes[it->second].ranks.push_back(r);
    if (r == world.rank()) *self = it->second;
  }
  return nodes;
}

}  // namespace

namespace {

// The previous and the next node of `self` in node order, once each.
std::vector<int> neighbours(int self, int n) {
  std::vector<int> targets;
  for (int t : {(self + 1) % n, (self + n - 1) % n}) {
    if (t != self && (targets.empty() || targets.front() != t)) targets.push_back(t);
  }
  return targets;
}

// Collective: true when every node's first rank reached its neighbours at their advertised
// addresses. A monitor that cannot reach a healthy node would end every job as "node
// lost"; one that is off leaves the watchdog as the bound. first: this rank leads its node.
bool neighbours_answer(Communicator& world, const std::vector<Node>& nodes, const std::vector<int>& targets,
                       bool first) {
  int32_t ok = 1;
  for (int t : targets) {
    if (!first) break;
    const std::string why = probe(nodes[t], std::chrono::milliseconds(2000));
    if (why.empty()) continue;
    ok = 0;
    std::cerr << "reel: warning on rank " << world.rank() << " (" << host_name() << "): the node monitor is off "
              << "(dist.node_timeout): " << describe(nodes[t]) << " did not answer at start-up (" << why
              << "); a lost node then ends the job only through the watchdog (dist.timeout). Set REEL_NODE_ADDRESS "
              << "on every node to the address the others reach it at" << std::endl;
  }
  auto flag = at::full({1}, ok, at::TensorOptions(at::kInt).device(world.device()));
  world.all_reduce(flag, ReduceOp::kSum);
  return flag.cpu().item<int32_t>() == world.size();
}

}  // namespace

void NodeMonitor::start(Communicator& world, std::chrono::seconds timeout, std::chrono::milliseconds interval) {
  State& s = state();
  if (timeout.count() <= 0 || s.started) return;
  // Every rank opens a listener (only a node's first rank keeps it: which one is first is
  // known after the all-gather, and the all-gather needs every port).
  auto [fd, port] = listen_any();
  int self = -1;
  std::vector<Node> nodes = gather_nodes(world, host_address(), port, &self);
  const bool first = nodes[self].ranks.front() == world.rank();
  const int n = static_cast<int>(nodes.size());
  const std::vector<int> targets = neighbours(self, n);
  if (n < 2 || !neighbours_answer(world, nodes, targets, first)) {
    ::close(fd);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.nodes = std::move(nodes);  // every rank can probe its neighbours for a hang dump
    s.self = self;
    s.targets = targets;
    s.started = true;
  }
  if (!first) {
    ::close(fd);
    return;
  }
  std::thread(watch, fd, targets, timeout, interval).detach();  // lives as long as the process
}

void NodeMonitor::stop() {
  std::lock_guard<std::mutex> lock(state().mutex);  // a report in progress finishes first
  state().stopped = true;
}

void NodeMonitor::set_report_dir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().report_dir = dir;
}

void NodeMonitor::set_loss_handler(std::function<void(const std::string&)> handler) {
  std::lock_guard<std::mutex> lock(state().mutex);
  state().on_loss = std::move(handler);
}

std::string NodeMonitor::probe_all() {
  State& s = state();
  std::vector<Node> nodes;
  std::vector<int> targets;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    nodes = s.nodes;
    targets = s.targets;
  }
  std::string out;  // the neighbours only: bounded (2 x 1 s), and no storm of probes at a job-wide hang
  for (int t : targets) {
    const std::string why = probe(nodes[t], std::chrono::milliseconds(1000));
    if (!why.empty()) out += "unreachable: " + describe(nodes[t]) + ": " + why + "\n";
  }
  return out;
}

}  // namespace reel
