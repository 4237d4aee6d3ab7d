// A program of another project that uses installed reel (reel::dist): start the ranks'
// runtime, lay them out as a mesh, sum a tensor over every rank and check the result.
//
//   mpirun -np 2 ./allreduce_check        (prints "OK: ..." on rank 0; exit 1 on any rank's failure)
#include <ATen/ATen.h>

#include <exception>
#include <iostream>

#include "reel/dist/agreement.hpp"
#include "reel/dist/process_mesh.hpp"
#include "reel/dist/runtime.hpp"

namespace {

// Every rank holds (rank + 1) in 8 elements; after an all-reduce each holds 1 + ... + n.
bool check_all_reduce(reel::Communicator& group, const char* name) {
  auto t = at::full({8}, group.rank() + 1.0f, at::TensorOptions(at::kFloat).device(group.device()));
  group.all_reduce(t);
  const float want = group.size() * (group.size() + 1) / 2.0f;
  const bool ok = t.eq(want).all().item<bool>();
  if (!ok)
    std::cerr << name << " all_reduce on rank " << group.rank() << ": got " << t[0].item<float>() << ", want " << want
              << "\n";
  return ok;
}

int run() {
  reel::RuntimeConfig config;
  config.backend = reel::BackendKind::kMpi;  // CPU ranks: the same result on any machine, GPU or not
  reel::Runtime runtime(config);
  bool ok = true;
  {  // communicators made from the runtime's world go before the runtime does
    auto mesh = reel::ProcessMesh::create(runtime.world(), reel::MeshConfig{});  // dp = every rank
    ok = check_all_reduce(mesh.world(), "world") && ok;
    ok = check_all_reduce(mesh.dp_group(), "dp") && ok;
    ok = !reel::any_rank(mesh.world(), !ok);  // every rank learns whether any failed, so all exit alike
    if (ok && mesh.world_rank() == 0) {
      std::cout << "OK: all_reduce over " << mesh.world_size() << " rank(s) with reel::dist (" << mesh.world().backend()
                << ")" << std::endl;
    }
  }
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::cerr << "allreduce_check: " << e.what() << std::endl;
    reel::abort_job(1);  // the other ranks would wait forever
  }
}
