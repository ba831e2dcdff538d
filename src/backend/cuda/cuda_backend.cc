// The CUDA backend's host side: devices, memory (plain cudaMalloc, never managed memory), one
// stream, cuBLAS, the map from host addresses to device memory (see cuda.h) and the dispatch of
// each node to its kernel (kernels/<op>.cu).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <numbers>
#include <stdexcept>
#include <string>

#include "backend/cuda/cuda.h"
#include "backend/cuda/kernels/kernels.h"

namespace corral::backend::cuda {
namespace {

using ml::DType;
using ml::OpKind;

static_assert(static_cast<uint32_t>(DT::Q4_K) == static_cast<uint32_t>(DType::Q4_K) &&
              static_cast<uint32_t>(DT::BF16) == static_cast<uint32_t>(DType::BF16) &&
              static_cast<uint32_t>(DT::I64) == static_cast<uint32_t>(DType::I64) &&
              static_cast<uint32_t>(DT::Q8_K) == static_cast<uint32_t>(DType::Q8_K));

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string("cuda: ") + what + ": " + cudaGetErrorString(e));
  }
}
void check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cublas: ") + what + ": status " +
                             std::to_string(static_cast<int>(s)));
  }
}

constexpr size_t kAlign = 256;  // cudaMalloc's alignment; staged tensors keep it
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// A device allocation that grows (contents are not kept) and frees itself.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory() { reset(); }
  // At least `bytes`; the stream must be idle when this grows (the old block is freed).
  void reserve(size_t bytes, cudaStream_t stream) {
    if (bytes <= size_) return;
    check(cudaStreamSynchronize(stream), "synchronize before growing a buffer");
    reset();
    check(cudaMalloc(&ptr_, bytes), ("allocate " + std::to_string(bytes) + " bytes").c_str());
    size_ = bytes;
  }
  void reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }
  char* get() const { return static_cast<char*>(ptr_); }
  size_t size() const { return size_; }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

bool plain_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }
bool index_type(DType t) { return t == DType::I32 || t == DType::I64; }
// Formats the dequantizing kernels (get_rows, mul_mat) are instantiated for.
bool weight_type(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q8_1:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::Q8_K:
      return true;
    default:
      return false;
  }
}

// YaRN correction dims, as backend/reference/rope.cc computes them (f32 on the host).
float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2 * std::numbers::pi_v<float>)) /
         (2 * std::log(base));
}

RopeArgs rope_args(const ml::Node& n) {
  const auto& p = n.params<ml::op::Rope>();
  RopeArgs r;
  r.mode = static_cast<int>(p.mode);
  r.n_dims = p.n_dims;
  r.freq_scale = p.freq_scale;
  r.ext_factor = p.ext_factor;
  r.attn_factor = p.attn_factor;
  r.theta_scale = std::pow(p.freq_base, -2.0f / static_cast<float>(p.n_dims));
  const float start = std::floor(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.beta_fast, p.freq_base));
  const float end = std::ceil(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.beta_slow, p.freq_base));
  r.corr[0] = std::max(0.0f, start);
  r.corr[1] = std::min(static_cast<float>(p.n_dims - 1), end);
  for (int i = 0; i < 4; ++i) r.sections[i] = p.sections[i];
  r.cache_len = p.mode == ml::op::RopeMode::kVision ? static_cast<int>(n.ne[0]) : p.n_dims;
  r.has_ff = n.src[2] >= 0;
  return r;
}

class CudaBackendImpl;

// A resident range: [host, host + bytes) has a device copy at dev.
struct Range {
  const char* host = nullptr;
  size_t bytes = 0;
  void* dev = nullptr;
  // From allocate(): the device copy is the one kernels write (a KV cache), so it is copied
  // back when another backend reads it. Ranges from make_resident() are read-only.
  bool writable = false;
  void* shadow = nullptr;  // the mmapped host key range of an allocate() buffer
};

// The handle make_resident() and allocate() return: unregisters and frees on destruction.
class RangeBuffer final : public ml::Buffer {
 public:
  RangeBuffer(CudaBackendImpl* owner, const char* host, size_t bytes)
      : owner_(owner), host_(host), bytes_(bytes) {}
  ~RangeBuffer() override;
  void* data() override { return const_cast<char*>(host_); }
  size_t size() const override { return bytes_; }

 private:
  CudaBackendImpl* owner_;
  const char* host_;
  size_t bytes_;
};

class CudaBackendImpl final : public CudaBackend {
 public:
  explicit CudaBackendImpl(const DeviceInfo& info) : info_(info) {
    check(cudaSetDevice(info_.index), "set device");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "create stream");
    check(cublasCreate(&cublas_), "create handle");
    check(cublasSetStream(cublas_, stream_), "set stream");
  }
  ~CudaBackendImpl() override {
    cudaStreamSynchronize(stream_);
    for (auto& [start, r] : ranges_) free_range(r);
    arena_.reset();
    staging_.reset();
    scratch_.reset();
    cublasDestroy(cublas_);
    cudaStreamDestroy(stream_);
  }

  std::string_view name() const override { return "cuda"; }
  const DeviceInfo& device() const override { return info_; }

  size_t device_bytes() const override {
    size_t total = arena_.size() + staging_.size() + scratch_.size();
    for (const auto& [start, r] : ranges_) total += r.bytes;
    return total;
  }

  std::unique_ptr<ml::Buffer> make_resident(const void* host, size_t bytes) override {
    check(cudaSetDevice(info_.index), "set device");
    Range r;
    r.host = static_cast<const char*>(host);
    r.bytes = bytes;
    check(cudaMalloc(&r.dev, std::max<size_t>(bytes, 1)), "allocate a resident range");
    check(cudaMemcpy(r.dev, host, bytes, cudaMemcpyHostToDevice), "upload a resident range");
    add_range(r);
    return std::make_unique<RangeBuffer>(this, r.host, bytes);
  }

  // Device memory, zeroed, keyed by a reserved host range that is never touched (anonymous
  // pages cost nothing until written, and a copy-back writes only what another backend reads).
  std::unique_ptr<ml::Buffer> allocate(size_t bytes) override {
    check(cudaSetDevice(info_.index), "set device");
    Range r;
    r.bytes = bytes;
    r.writable = true;
    r.shadow = mmap(nullptr, std::max<size_t>(bytes, 1), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r.shadow == MAP_FAILED) throw std::bad_alloc();
    r.host = static_cast<const char*>(r.shadow);
    const cudaError_t e = cudaMalloc(&r.dev, std::max<size_t>(bytes, 1));
    if (e != cudaSuccess) {
      munmap(r.shadow, std::max<size_t>(bytes, 1));
      check(e, ("allocate " + std::to_string(bytes) + " bytes").c_str());
    }
    check(cudaMemset(r.dev, 0, bytes), "zero an allocation");
    add_range(r);
    return std::make_unique<RangeBuffer>(this, r.host, bytes);
  }

  void release(const char* host) {
    auto it = ranges_.find(reinterpret_cast<uintptr_t>(host));
    if (it == ranges_.end()) return;
    cudaStreamSynchronize(stream_);
    free_range(it->second);
    ranges_.erase(it);
  }

  bool supports(const ml::Graph& g, const ml::Node& n) const override;
  void prepare(const ml::Graph& g, std::span<const int> order,
               std::span<ml::Backend* const> placement, std::span<const int> outputs) override;
  void compute(const ml::Graph& g, std::span<const int> nodes) override;
  void synchronize() override { check(cudaStreamSynchronize(stream_), "synchronize"); }

 private:
  void add_range(const Range& r) { ranges_[reinterpret_cast<uintptr_t>(r.host)] = r; }
  static void free_range(Range& r) {
    if (r.dev) cudaFree(r.dev);
    if (r.shadow) munmap(r.shadow, std::max<size_t>(r.bytes, 1));
    r.dev = nullptr;
    r.shadow = nullptr;
  }
  // The resident range holding [p, p + bytes), or null.
  const Range* find_range(const void* p, size_t bytes) const {
    const auto addr = reinterpret_cast<uintptr_t>(p);
    auto it = ranges_.upper_bound(addr);
    if (it == ranges_.begin()) return nullptr;
    --it;
    const Range& r = it->second;
    return addr + bytes <= it->first + r.bytes ? &r : nullptr;
  }
  // Large data that is not resident stays where it is: a node reading it runs on the host
  // (num_gpu layers: the weights and cache of the layers not offloaded).
  static constexpr size_t kMaxStagedLeaf = size_t{16} << 20;
  bool reads_host_only_data(const ml::Graph& g, const ml::Node& n) const {
    for (int s : n.src) {
      if (s < 0) continue;
      const ml::Node& root = g.node(g.storage_root(s));
      if (root.kind() != OpKind::kLeaf || root.nbytes() < kMaxStagedLeaf) continue;
      if (!find_range(root.data, root.nbytes())) return true;
    }
    return false;
  }

  char* device_address(const ml::Graph& g, int id) const {
    const int r = g.storage_root(id);
    return base_[r] +
           (static_cast<const char*>(g.node(id).data) - static_cast<const char*>(g.node(r).data));
  }
  TensorArg arg(const ml::Graph& g, int id) const {
    TensorArg t;
    if (id < 0) return t;
    const ml::Node& n = g.node(id);
    t.data = device_address(g, id);
    t.dtype = static_cast<DT>(static_cast<uint32_t>(n.dtype));
    for (int i = 0; i < 4; ++i) {
      t.ne[i] = n.ne[i];
      t.nb[i] = static_cast<int64_t>(n.nb[i]);
    }
    return t;
  }
  void resolve_root(const ml::Graph& g, int r);
  void run_node(const ml::Graph& g, const ml::Node& n, int id);

  DeviceInfo info_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  std::map<uintptr_t, Range> ranges_;  // by host start

  // From prepare(): which nodes run here, which of them must be copied to the host, and the
  // device arena for the ones that own memory.
  const ml::Graph* prepared_ = nullptr;
  std::vector<char> mine_, download_;
  std::vector<int> my_order_, keep_;
  ml::MemoryPlan plan_;
  DeviceMemory arena_, staging_, scratch_;

  // Per compute() call: the device base of each root used (valid when stamp_[r] == run_),
  // and the roots copied to staging.
  std::vector<char*> base_;
  std::vector<uint64_t> stamp_;
  uint64_t run_ = 0;
  struct Staged {
    int root;
    size_t offset;
    size_t bytes;
  };
  std::vector<Staged> staged_;
  size_t staged_bytes_ = 0;
};

RangeBuffer::~RangeBuffer() { owner_->release(host_); }

bool CudaBackendImpl::supports(const ml::Graph& g, const ml::Node& n) const {
  auto src = [&](int i) -> const ml::Node& { return g.node(n.src[i]); };
  auto has = [&](int i) { return n.src[i] >= 0; };
  if (n.kind() == OpKind::kLeaf) return false;
  if (n.kind() == OpKind::kView) return true;
  if (reads_host_only_data(g, n)) return false;
  switch (n.kind()) {
    case OpKind::kCont:
      return true;
    case OpKind::kCpy: {
      const bool from_ok = weight_type(src(0).dtype);
      if (plain_float(n.dtype)) return from_ok;
      return (n.dtype == DType::Q8_0 || n.dtype == DType::Q4_0) && from_ok && n.ne[0] % 32 == 0;
    }
    case OpKind::kGetRows:
      return weight_type(src(0).dtype) && index_type(src(1).dtype);
    case OpKind::kMulMat:
      return weight_type(src(0).dtype) && src(1).dtype == DType::F32;
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv:
    case OpKind::kSwiGlu:
      return plain_float(n.dtype) && plain_float(src(0).dtype) && plain_float(src(1).dtype);
    case OpKind::kScale:
    case OpKind::kSilu:
    case OpKind::kGelu:
    case OpKind::kGeluQuick:
    case OpKind::kRmsNorm:
    case OpKind::kSumRows:
    case OpKind::kMean:
      return plain_float(n.dtype) && plain_float(src(0).dtype);
    case OpKind::kArgMax:
      return plain_float(src(0).dtype) && n.dtype == DType::I32;
    case OpKind::kLayerNorm:
      return plain_float(n.dtype) && plain_float(src(0).dtype) &&
             (!has(1) || plain_float(src(1).dtype)) && (!has(2) || plain_float(src(2).dtype));
    case OpKind::kSoftMax:
      return plain_float(n.dtype) && plain_float(src(0).dtype) &&
             (!has(1) || plain_float(src(1).dtype));
    case OpKind::kRope:
      return plain_float(n.dtype) && plain_float(src(0).dtype) && index_type(src(1).dtype) &&
             (!has(2) || plain_float(src(2).dtype));
    case OpKind::kConcat:
      return !ml::is_quantized(n.dtype) && n.dtype == src(0).dtype && n.dtype == src(1).dtype;
    case OpKind::kSetRows:
      return (plain_float(n.dtype) || n.dtype == DType::Q8_0 || n.dtype == DType::Q4_0) &&
             plain_float(src(1).dtype) && index_type(src(2).dtype);
    case OpKind::kFlashAttn:
      return plain_float(src(0).dtype) && plain_float(src(1).dtype) && plain_float(src(2).dtype) &&
             (!has(3) || plain_float(src(3).dtype)) && src(0).ne[0] <= kMaxHeadDim &&
             src(2).ne[0] <= kMaxHeadDim && plain_float(n.dtype);
    case OpKind::kIm2Col:
      return plain_float(n.dtype) && plain_float(src(1).dtype);
    case OpKind::kConv2D:
      return plain_float(n.dtype) && plain_float(src(0).dtype) && plain_float(src(1).dtype);
    default:
      return false;
  }
}

void CudaBackendImpl::prepare(const ml::Graph& g, std::span<const int> order,
                              std::span<ml::Backend* const> placement,
                              std::span<const int> outputs) {
  const int n = g.size();
  prepared_ = &g;
  mine_.assign(n, 0);
  download_.assign(n, 0);
  my_order_.clear();
  for (size_t i = 0; i < order.size(); ++i) {
    if (placement[i] == this) {
      mine_[order[i]] = 1;
      my_order_.push_back(order[i]);
    }
  }
  check(cudaSetDevice(info_.index), "set device");
  // What leaves this device: outputs, and whatever a node on another backend reads.
  for (size_t i = 0; i < order.size(); ++i) {
    if (placement[i] == this) continue;
    const ml::Node& f = g.node(order[i]);
    if (f.kind() == OpKind::kView) continue;  // reads nothing itself
    for (int s : f.src) {
      if (s < 0) continue;
      const int r = g.storage_root(s);
      download_[r] = 1;
      // A cache this backend writes, read over there: its host copy must be current first.
      const ml::Node& root = g.node(r);
      const Range* range =
          root.kind() == OpKind::kLeaf ? find_range(root.data, root.nbytes()) : nullptr;
      if (range && range->writable && root.nbytes()) {
        check(cudaMemcpy(root.data,
                         static_cast<const char*>(range->dev) +
                             (static_cast<const char*>(root.data) - range->host),
                         root.nbytes(), cudaMemcpyDeviceToHost),
              "download a cache for another backend");
      }
    }
  }
  if (my_order_.empty()) return;
  for (int out : outputs) download_[g.storage_root(out)] = 1;
  keep_.clear();
  for (int id : my_order_) {
    if (download_[id]) keep_.push_back(id);
  }
  // Kept to the end so that their copies home (after the run that computes them) read intact
  // memory.
  plan_ = ml::plan_memory(g, my_order_, keep_);
  arena_.reserve(std::max<size_t>(plan_.size, 1), stream_);
  base_.resize(n);
  stamp_.assign(n, 0);
  run_ = 0;
}

void CudaBackendImpl::resolve_root(const ml::Graph& g, int r) {
  if (stamp_[r] == run_) return;
  stamp_[r] = run_;
  const ml::Node& root = g.node(r);
  if (mine_[r] && plan_.offset[r] != ml::MemoryPlan::kNoOffset) {
    base_[r] = arena_.get() + plan_.offset[r];
    return;
  }
  if (root.kind() == OpKind::kLeaf) {
    if (const Range* range = find_range(root.data, root.nbytes())) {
      base_[r] =
          static_cast<char*>(range->dev) + (static_cast<const char*>(root.data) - range->host);
      return;
    }
  }
  // Host data (an input, a small weight, another backend's result): staged for this run.
  const size_t bytes = root.nbytes();
  staged_.push_back({r, staged_bytes_, bytes});
  staged_bytes_ += align_up(std::max<size_t>(bytes, 1));
  base_[r] = nullptr;  // set once staging is sized
}

void CudaBackendImpl::compute(const ml::Graph& g, std::span<const int> nodes) {
  if (nodes.empty()) return;
  if (prepared_ != &g || mine_.size() != static_cast<size_t>(g.size())) {
    throw std::logic_error("cuda: compute() of a graph prepare() did not see");
  }
  check(cudaSetDevice(info_.index), "set device");
  ++run_;
  staged_.clear();
  staged_bytes_ = 0;
  for (int id : nodes) {
    // A view runs nothing: its readers resolve what they read.
    if (g.node(id).kind() == OpKind::kView) continue;
    resolve_root(g, g.storage_root(id));
    for (int s : g.node(id).src) {
      if (s >= 0) resolve_root(g, g.storage_root(s));
    }
  }
  if (!staged_.empty()) {
    staging_.reserve(staged_bytes_, stream_);
    for (const Staged& s : staged_) {
      base_[s.root] = staging_.get() + s.offset;
      if (s.bytes) {
        check(cudaMemcpyAsync(base_[s.root], g.node(s.root).data, s.bytes, cudaMemcpyHostToDevice,
                              stream_),
              "upload");
      }
    }
  }
  for (int id : nodes) {
    if (g.node(id).kind() != OpKind::kView) run_node(g, g.node(id), id);
  }
  check(cudaGetLastError(), "launch");

  // Copies home: results others read, and leaves written here that live on the host (a staged
  // cache) or that another backend reads (a resident cache read on the host).
  bool copied = false;
  auto copy_home = [&](int r) {
    const ml::Node& root = g.node(r);
    if (root.nbytes() == 0) return;
    check(cudaMemcpyAsync(root.data, base_[r], root.nbytes(), cudaMemcpyDeviceToHost, stream_),
          "download");
    copied = true;
  };
  for (int id : nodes) {
    const ml::Node& n = g.node(id);
    if (n.kind() == OpKind::kSetRows) {
      const int r = g.storage_root(id);
      const ml::Node& leaf = g.node(r);
      const Range* range = find_range(leaf.data, leaf.nbytes());
      if (!range || download_[r]) copy_home(r);
    } else if (download_[id] && plan_.offset[id] != ml::MemoryPlan::kNoOffset) {
      copy_home(id);
    }
  }
  if (copied || !staged_.empty()) {
    // The host buffers staged from may change once compute returns.
    check(cudaStreamSynchronize(stream_), "synchronize");
  }
}

void CudaBackendImpl::run_node(const ml::Graph& g, const ml::Node& n, int id) {
  Launch l{stream_, reinterpret_cast<cublasContext*>(cublas_), scratch_.get(), scratch_.size()};
  const TensorArg dst = arg(g, id);
  const TensorArg a = arg(g, n.src[0]);
  const TensorArg b = arg(g, n.src[1]);
  const TensorArg c = arg(g, n.src[2]);
  switch (n.kind()) {
    case OpKind::kLeaf:
    case OpKind::kView:
      break;
    case OpKind::kCont:
      cont(l, dst, a);
      break;
    case OpKind::kCpy:
      cpy(l, dst, a);
      break;
    case OpKind::kGetRows:
      get_rows(l, dst, a, b);
      break;
    case OpKind::kMulMat: {
      const size_t need = mul_mat_scratch_bytes(dst, a, b);
      if (need > scratch_.size()) {
        scratch_.reserve(need, stream_);
        l.scratch = scratch_.get();
        l.scratch_bytes = scratch_.size();
      }
      mul_mat(l, dst, a, b);
      break;
    }
    case OpKind::kAdd:
      add(l, dst, a, b);
      break;
    case OpKind::kSub:
      sub(l, dst, a, b);
      break;
    case OpKind::kMul:
      mul(l, dst, a, b);
      break;
    case OpKind::kDiv:
      div(l, dst, a, b);
      break;
    case OpKind::kSwiGlu:
      swiglu(l, dst, a, b);
      break;
    case OpKind::kScale: {
      const auto& p = n.params<ml::op::Scale>();
      scale(l, dst, a, p.scale, p.bias);
      break;
    }
    case OpKind::kSilu:
      silu(l, dst, a);
      break;
    case OpKind::kGelu:
      gelu(l, dst, a, n.params<ml::op::Gelu>().form == ml::op::GeluForm::kErf);
      break;
    case OpKind::kGeluQuick:
      gelu_quick(l, dst, a);
      break;
    case OpKind::kRmsNorm:
      rms_norm(l, dst, a, n.params<ml::op::RmsNorm>().eps);
      break;
    case OpKind::kLayerNorm:
      layer_norm(l, dst, a, b, c, n.params<ml::op::LayerNorm>().eps);
      break;
    case OpKind::kSoftMax:
      softmax(l, dst, a, b, n.params<ml::op::SoftMax>().scale);
      break;
    case OpKind::kRope:
      rope(l, dst, a, b, c, rope_args(n));
      break;
    case OpKind::kConcat:
      concat(l, dst, a, b, n.params<ml::op::Concat>().dim);
      break;
    case OpKind::kSetRows:
      set_rows(l, dst, b, c);
      break;
    case OpKind::kArgMax:
      argmax(l, dst, a);
      break;
    case OpKind::kSumRows:
      sum_rows(l, dst, a);
      break;
    case OpKind::kMean:
      mean(l, dst, a);
      break;
    case OpKind::kFlashAttn: {
      const auto& p = n.params<ml::op::FlashAttn>();
      flash_attn(l, dst, a, b, c, arg(g, n.src[3]), p.scale, p.causal);
      break;
    }
    case OpKind::kIm2Col: {
      const auto& p = n.params<ml::op::Im2Col>();
      im2col(l, dst, a, b, ConvArgs{p.s0, p.s1, p.p0, p.p1, p.d0, p.d1});
      break;
    }
    case OpKind::kConv2D: {
      const auto& p = n.params<ml::op::Conv2D>();
      conv2d(l, dst, a, b, ConvArgs{p.s0, p.s1, p.p0, p.p1, p.d0, p.d1});
      break;
    }
    case OpKind::kCount:
      break;
  }
}

std::string error_reason(cudaError_t e) {
  return std::string("no usable CUDA device (") + cudaGetErrorString(e) + ")";
}

}  // namespace

bool built() { return true; }

std::vector<DeviceInfo> devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return {};
  }
  std::vector<DeviceInfo> out;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    DeviceInfo d;
    d.index = i;
    d.name = prop.name;
    d.cc_major = prop.major;
    d.cc_minor = prop.minor;
    d.sm_count = prop.multiProcessorCount;
    d.total_bytes = prop.totalGlobalMem;
    d.free_bytes = prop.totalGlobalMem;
    int current = 0;
    if (cudaGetDevice(&current) == cudaSuccess && cudaSetDevice(i) == cudaSuccess) {
      size_t free = 0, total = 0;
      if (cudaMemGetInfo(&free, &total) == cudaSuccess) d.free_bytes = free;
      cudaSetDevice(current);
    }
    out.push_back(d);
  }
  return out;
}

std::string unavailable_reason() {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return error_reason(e);
  }
  return count == 0 ? "no CUDA device present" : "";
}

std::unique_ptr<CudaBackend> make_backend(CudaOptions options) {
  const std::vector<DeviceInfo> all = devices();
  if (all.empty()) throw std::runtime_error("cuda: " + unavailable_reason());
  for (const DeviceInfo& d : all) {
    if (d.index == options.device) return std::make_unique<CudaBackendImpl>(d);
  }
  throw std::runtime_error("cuda: no device " + std::to_string(options.device) + " (" +
                           std::to_string(all.size()) + " present)");
}

}  // namespace corral::backend::cuda
