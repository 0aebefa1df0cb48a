#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

namespace x2v {

namespace {
DeviceAllocator* g_alloc[2] = {nullptr, nullptr};

std::shared_ptr<Storage> allocate(size_t bytes, Device device) {
  auto st = std::make_shared<Storage>();
  st->bytes = bytes;
  st->device = device;
  if (device == Device::CPU) {
    // 64-byte alignment for vector loads; at least one byte so that data is never null.
    size_t n = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, n ? n : 64);
    if (!p) fail(ErrorKind::OutOfMemory, "host allocation of ", bytes, " bytes failed");
    st->data = p;
    st->owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  } else {
    DeviceAllocator* a = device_allocator(device);
    if (!a)
      fail(ErrorKind::Unsupported, "no ", device_name(device),
           " backend in this build (rebuild with the CUDA preset, or run on the CPU)");
    void* p = a->allocate(bytes);
    st->data = p;
    st->owner = std::shared_ptr<void>(p, [a, bytes](void* q) { a->release(q, bytes); });
  }
  return st;
}
}  // namespace

const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }

Device device_from_name(const std::string& name, const char* option) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda") return Device::CUDA;
  fail(ErrorKind::InvalidArgument, option, " ", name, ": use cpu or cuda");
}

void set_device_allocator(Device d, DeviceAllocator* a) { g_alloc[static_cast<int>(d)] = a; }
DeviceAllocator* device_allocator(Device d) { return g_alloc[static_cast<int>(d)]; }

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail(ErrorKind::InvalidArgument, "negative dimension in shape ", shape_str(s));
    if (d != 0 && n > INT64_MAX / d) fail(ErrorKind::InvalidArgument, "shape ", shape_str(s), " is too large");
    n *= d;
  }
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  if (static_cast<uint64_t>(t.numel_) > (UINT64_MAX / 16))
    fail(ErrorKind::InvalidArgument, "shape ", shape_str(shape), " is too large");
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = allocate(t.nbytes(), device);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_zero();
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner, Device device) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::make_shared<Storage>();
  t.storage_->data = data;
  t.storage_->bytes = t.nbytes();
  t.storage_->device = device;
  t.storage_->owner = std::move(owner);
  return t;
}

Tensor Tensor::from_f32(const std::vector<float>& v, const Shape& shape) {
  Tensor t = empty(shape, DType::F32);
  if (static_cast<int64_t>(v.size()) != t.numel())
    fail(ErrorKind::InvalidArgument, "from_f32: ", v.size(), " values for shape ", shape_str(shape));
  std::memcpy(t.raw(), v.data(), v.size() * 4);
  return t;
}

int64_t Tensor::size(int d) const {
  int n = dim();
  if (d < 0) d += n;
  if (d < 0 || d >= n) fail(ErrorKind::Internal, "dimension ", d, " out of range for ", desc());
  return shape_[static_cast<size_t>(d)];
}

std::string Tensor::desc() const { return std::string(dtype_name(dtype_)) + shape_str(shape_); }

void Tensor::check_type(size_t elem, int tag) const {
  if (!storage_) fail(ErrorKind::Internal, "data() on an undefined tensor");
  bool ok = false;
  switch (tag) {
    case 0: ok = dtype_ == DType::F32; break;
    case 1: ok = dtype_ == DType::F16 || dtype_ == DType::BF16; break;
    case 2: ok = dtype_ == DType::U8 || dtype_ == DType::F8E4M3 || dtype_ == DType::F8E5M2 || dtype_ == DType::BOOL; break;
    case 3: ok = dtype_ == DType::I8; break;
    case 4: ok = dtype_ == DType::I32; break;
    case 5: ok = dtype_ == DType::I64; break;
  }
  if (!ok || elem != dtype_size(dtype_))
    fail(ErrorKind::Internal, "tensor ", desc(), " accessed with the wrong element type");
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) fail(ErrorKind::Internal, "reshape: two -1 dims in ", shape_str(shape));
      infer = static_cast<int>(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel_ % known) fail(ErrorKind::Internal, "reshape ", desc(), " to ", shape_str(shape));
    s[static_cast<size_t>(infer)] = numel_ / known;
  }
  if (shape_numel(s) != numel_) fail(ErrorKind::Internal, "reshape ", desc(), " to ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  if (dim() == 0 || begin < 0 || end < begin || end > shape_[0])
    fail(ErrorKind::Internal, "slice [", begin, ", ", end, ") of ", desc());
  Tensor t = *this;
  int64_t inner = shape_[0] ? numel_ / shape_[0] : 0;
  t.offset_ += static_cast<size_t>(begin * inner) * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  t.numel_ = inner * (end - begin);
  return t;
}

Tensor Tensor::operator[](int64_t i) const {
  Tensor t = slice(i, i + 1);
  t.shape_.erase(t.shape_.begin());
  return t;
}

void Tensor::fill_zero() {
  if (!nbytes()) return;
  if (is_cpu())
    std::memset(raw(), 0, nbytes());
  else
    device_allocator(device())->fill_zero(raw(), nbytes());
}

void Tensor::copy_from(const Tensor& src) {
  if (src.numel() != numel()) fail(ErrorKind::Internal, "copy_from: ", src.desc(), " into ", desc());
  if (!nbytes()) return;
  if (src.dtype() == dtype()) {
    if (is_cpu() && src.is_cpu()) {
      std::memcpy(raw(), src.raw(), nbytes());
    } else {
      Device d = is_cpu() ? src.device() : device();
      device_allocator(d)->copy(raw(), device(), src.raw(), src.device(), nbytes());
    }
    return;
  }
  if (is_cpu() && src.is_cpu()) {
    convert(src.raw(), src.dtype(), raw(), dtype(), static_cast<size_t>(numel()));
    return;
  }
  if (device() == src.device() && device_allocator(device())->convert(raw(), dtype(), src.raw(), src.dtype(),
                                                                       static_cast<size_t>(numel())))
    return;
  // Cross-device with conversion: convert on the host.
  Tensor a = src.is_cpu() ? src : src.to(Device::CPU);
  Tensor b = a.to(dtype());
  copy_from(b);
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype, device());
  t.copy_from(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor t = empty(shape_, dtype_, device);
  t.copy_from(*this);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  t.copy_from(*this);
  return t;
}

std::vector<float> Tensor::to_vector() const {
  Tensor h = to(Device::CPU).to(DType::F32);
  std::vector<float> v(static_cast<size_t>(numel_));
  if (numel_) std::memcpy(v.data(), h.raw(), v.size() * 4);
  return v;
}

float Tensor::item() const {
  if (numel_ != 1) fail(ErrorKind::InvalidArgument, "item() of ", desc(), ": expected one element");
  return to_vector()[0];
}

}  // namespace x2v
