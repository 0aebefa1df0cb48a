// Tensor: a dense, row-major (contiguous) n-d array with a dtype and a device, sharing its storage.
//
// Tensors are always contiguous: layout changes (permute, concat) are ops that produce new tensors.
// That keeps every kernel simple and every view cheap: reshape and outer-dimension slices share
// storage. Storage is reference counted and may belong to something else (an mmap'd checkpoint).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"

namespace x2v {

enum class Device : uint8_t { CPU, CUDA };
const char* device_name(Device d);
// "cpu" or "cuda" → the Device (InvalidArgument naming `option` otherwise). Whether this build has a
// backend for it is a separate question: device_allocator(d).
Device device_from_name(const std::string& name, const char* option);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
// Product of dims, with overflow and negative-dim checks (sizes come from untrusted files).
int64_t shape_numel(const Shape& s);

// Where device memory comes from. The CUDA backend registers one at start-up; the core never
// includes CUDA headers.
struct DeviceAllocator {
  virtual ~DeviceAllocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p, size_t bytes) = 0;
  // Copies between host and this device (synchronous) or within the device (ordered with the
  // backend's other work, not waited for).
  virtual void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes) = 0;
  virtual void fill_zero(void* p, size_t bytes) = 0;
  // Dtype conversion of n elements within the device; false if the backend cannot do this pair
  // (the core then converts through the host).
  virtual bool convert(void* dst, DType dst_t, const void* src, DType src_t, size_t n) = 0;
};
void set_device_allocator(Device d, DeviceAllocator* a);
DeviceAllocator* device_allocator(Device d);  // null if no backend for d

struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device = Device::CPU;
  std::shared_ptr<void> owner;  // frees the memory (or unmaps the file) when the last user goes
};

class Tensor {
 public:
  Tensor() = default;

  static Tensor empty(const Shape& shape, DType dtype, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype, Device device = Device::CPU);
  // A view of memory owned by someone else; `owner` keeps it alive.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner,
                     Device device = Device::CPU);
  static Tensor from_f32(const std::vector<float>& v, const Shape& shape);
  static Tensor scalar_f32(float v) { return from_f32({v}, {}); }

  bool defined() const { return storage_ != nullptr; }
  // No other Tensor refers to this storage, so writing into it in place is invisible to everyone else
  // (the memory may still be read-only, e.g. a mapped checkpoint: only for tensors an op produced).
  bool unshared() const { return storage_ && storage_.use_count() == 1; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device::CPU; }
  bool is_cpu() const { return device() == Device::CPU; }
  int dim() const { return static_cast<int>(shape_.size()); }
  const Shape& shape() const { return shape_; }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  std::string desc() const;  // "bf16[2, 3]"

  void* raw() const { return static_cast<char*>(storage_->data) + offset_; }
  template <class T>
  T* data() const {
    check_type(sizeof(T), typeid_tag<T>());
    return static_cast<T*>(raw());
  }

  // Views (share storage).
  Tensor reshape(const Shape& shape) const;  // one dim may be -1
  Tensor slice(int64_t begin, int64_t end) const;  // along dim 0
  Tensor operator[](int64_t i) const;              // drop dim 0

  // Copies.
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor clone() const;
  void copy_from(const Tensor& src);  // same shape; converts dtype, crosses devices
  void fill_zero();

  // Values as f32 on the host (any dtype, any device): for tests, tools and small tensors.
  std::vector<float> to_vector() const;
  float item() const;

 private:
  template <class T>
  static int typeid_tag();
  void check_type(size_t elem, int tag) const;

  std::shared_ptr<Storage> storage_;
  size_t offset_ = 0;  // bytes
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::F32;
};

// data<T>() checks that T matches the dtype: float<->F32, uint16_t<->F16/BF16, uint8_t<->U8/F8/BOOL,
// int8_t<->I8, int32_t<->I32, int64_t<->I64.
template <> inline int Tensor::typeid_tag<float>() { return 0; }
template <> inline int Tensor::typeid_tag<uint16_t>() { return 1; }
template <> inline int Tensor::typeid_tag<uint8_t>() { return 2; }
template <> inline int Tensor::typeid_tag<int8_t>() { return 3; }
template <> inline int Tensor::typeid_tag<int32_t>() { return 4; }
template <> inline int Tensor::typeid_tag<int64_t>() { return 5; }

}  // namespace x2v
