// Device memory bandwidth probe (built with -DCORRAL_CUDA=ON): the read bandwidth a kernel
// reaches streaming a large buffer once (what decode, reading every weight once per token, is
// bound by) and cudaMemcpy's device-to-device copy rate. bench/gpu_check.sh compares
// `corral bench` tg figures with the read bandwidth.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

bool ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "cuda_bandwidth: %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

// Each thread sums 16-byte words with a grid stride; the sum is written so the loads stay.
__global__ void read_kernel(const uint4* p, size_t n, unsigned* sink) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x12345678u) *sink = acc;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t bytes = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4096) << 20;  // MiB
  const int reps = 10;
  cudaDeviceProp prop;
  if (!ok(cudaGetDeviceProperties(&prop, 0), "device 0")) return 1;
  void *a = nullptr, *b = nullptr;
  unsigned* sink = nullptr;
  if (!ok(cudaMalloc(&a, bytes), "allocate") || !ok(cudaMalloc(&b, bytes), "allocate") ||
      !ok(cudaMalloc(&sink, sizeof(unsigned)), "allocate")) {
    return 1;
  }
  cudaMemset(a, 1, bytes);
  cudaMemset(b, 0, bytes);
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  const int blocks = prop.multiProcessorCount * 8;
  const size_t words = bytes / sizeof(uint4);
  read_kernel<<<blocks, 512>>>(static_cast<const uint4*>(a), words, sink);  // warm-up
  cudaEventRecord(t0);
  for (int r = 0; r < reps; ++r) {
    read_kernel<<<blocks, 512>>>(static_cast<const uint4*>(a), words, sink);
  }
  cudaEventRecord(t1);
  if (!ok(cudaEventSynchronize(t1), "read kernel")) return 1;
  float read_ms = 0;
  cudaEventElapsedTime(&read_ms, t0, t1);
  cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);  // warm-up
  cudaEventRecord(t0);
  for (int r = 0; r < reps; ++r) cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
  cudaEventRecord(t1);
  if (!ok(cudaEventSynchronize(t1), "copy")) return 1;
  float copy_ms = 0;
  cudaEventElapsedTime(&copy_ms, t0, t1);
  const double gb = static_cast<double>(bytes) * reps / 1e9;
  std::printf("device: %s, %d SMs, %.1f GiB\n", prop.name, prop.multiProcessorCount,
              static_cast<double>(prop.totalGlobalMem) / (1ull << 30));
  std::printf("read_GBps %.1f\n", gb / (read_ms / 1e3));
  std::printf("copy_GBps %.1f\n", 2 * gb / (copy_ms / 1e3));  // read + write
  cudaFree(a);
  cudaFree(b);
  cudaFree(sink);
  return 0;
}
