#include "dist/node_monitor.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "dist/error.hpp"

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
  std::vector<Node> nodes;  // in order of their lowest world rank
  int self = -1;            // this rank's node
  bool started = false;
  std::atomic<bool> stopped{false};
};

State& state() {
  static State s;
  return s;
}

// This host's IPv4 address as its name resolves (the address other nodes reach it at:
// /etc/hosts or DNS, as Slurm's NodeAddr and Open MPI's TCP use); loopback when it does not.
uint32_t host_address() {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  uint32_t address = htonl(INADDR_LOOPBACK);
  if (getaddrinfo(host_name().c_str(), nullptr, &hints, &found) == 0 && found) {
    address = reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr.s_addr;
  }
  if (found) freeaddrinfo(found);
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

// The probing thread of a node's first rank: accepts the neighbours' probes and probes them.
void watch(int listener, std::vector<int> targets, std::chrono::seconds timeout, std::chrono::milliseconds interval) {
  State& s = state();
  std::map<int, Clock::time_point> last_answer;
  std::map<int, std::string> last_error;
  for (int t : targets) last_answer[t] = Clock::now();
  auto next_probe = Clock::now();
  while (!s.stopped.load()) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      for (int fd; (fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) ::close(fd);
    }
    if (Clock::now() < next_probe) continue;
    next_probe = Clock::now() + interval;
    for (int t : targets) {
      const std::string why = probe(s.nodes[t], std::min(interval, std::chrono::milliseconds(1000)));
      if (why.empty()) {
        last_answer[t] = Clock::now();
        continue;
      }
      last_error[t] = why;
      const auto silent = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - last_answer[t]);
      if (silent < timeout) continue;
      const std::string report = loss_report(s.nodes[t], silent, why);
      std::function<void(const std::string&)> handler;
      std::string dir;
      {
        std::lock_guard<std::mutex> lock(s.mutex);
        if (s.stopped.load()) return;  // the job ended while this probe ran
        handler = s.on_loss;
        dir = s.report_dir;
      }
      // One file per node that noticed: in a partition both sides see the other as lost,
      // and each side's batch script reads its own node's view.
      if (!dir.empty()) std::ofstream(dir + "/node_lost." + node_name() + ".txt") << s.nodes[t].name << "\n" << report << "\n";
      if (handler) {
        handler(report);
      } else {
        std::cerr << "reel: " << report << std::endl;
      }
      return;  // one report per process
    }
  }
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
  std::vector<int> targets;  // the previous and the next node, once each
  for (int t : {(self + 1) % n, (self + n - 1) % n}) {
    if (t != self && (targets.empty() || targets.front() != t)) targets.push_back(t);
  }
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (n > 1) s.nodes = std::move(nodes);  // every rank can probe for a hang dump
    s.self = self;
    s.started = true;
  }
  if (n < 2 || !first) {
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
  int self = -1;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    nodes = s.nodes;
    self = s.self;
  }
  std::string out;
  const auto per_node = std::chrono::milliseconds(std::max<int>(100, 2000 / std::max<int>(1, nodes.size())));
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    if (i == self) continue;
    const std::string why = probe(nodes[i], per_node);
    if (!why.empty()) out += "unreachable: " + describe(nodes[i]) + ": " + why + "\n";
  }
  return out;
}

}  // namespace reel
