// Finite-difference gradient checks for tests (float64).
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace reel::test {

// Central differences of the scalar f at `probes` coordinates of x0 (same device and
// dtype as x0, float64 expected) against autograd.
template <typename Fn>
void expect_gradient_matches(Fn&& f, const at::Tensor& x0, const std::string& what = "", int probes = 12) {
  auto x = x0.clone().set_requires_grad(true);
  f(x).backward();
  auto grad = x.grad().cpu();
  auto flat = x.detach().view({-1});
  for (int i = 0; i < probes; ++i) {
    const int64_t idx = (i * 7919) % flat.numel();
    const double h = 1e-6, orig = flat[idx].item<double>();
    flat[idx] = orig + h;
    const double up = at::Tensor(f(x.detach())).item<double>();
    flat[idx] = orig - h;
    const double down = at::Tensor(f(x.detach())).item<double>();
    flat[idx] = orig;
    const double fd = (up - down) / (2 * h), ad = grad.view({-1})[idx].item<double>();
    EXPECT_NEAR(ad, fd, 1e-6 + 1e-5 * std::abs(fd)) << what << " coordinate " << idx;
  }
}

}  // namespace reel::test
