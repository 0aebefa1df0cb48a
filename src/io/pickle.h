// A restricted unpickler for the data.pkl of a torch.save(state_dict) checkpoint.
//
// It runs nothing. It knows the opcodes the pickler emits for dicts, tuples, strings and numbers,
// and exactly the globals a state dict needs (collections.OrderedDict, torch._utils' tensor
// rebuilders, torch's typed storage classes); any other global, and every opcode that builds
// arbitrary objects (INST, OBJ, NEWOBJ, ...), is refused as a possibly malicious file. Tensors come
// out as descriptions (storage key, dtype, offset, sizes, strides) for the caller to validate
// against the archive. Hard limits bound the memo, the stack, strings, nesting and object count,
// and containers cannot be changed once they sit inside another (no cycles).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace x2v::io::pickle {

struct Limits {
  size_t max_memo = 1u << 20;        // distinct memo slots
  size_t max_stack = 1u << 20;       // values on the stack (plus open marks)
  size_t max_string = 1u << 20;      // bytes in one string
  size_t max_objects = 1u << 22;     // values created in total
  int max_depth = 32;                // containers inside containers
};

// torch's persistent id ('storage', <dtype>Storage, key, location, numel).
struct StorageRef {
  std::string key;
  DType dtype = DType::U8;
  std::string torch_type;  // "FloatStorage", ... (for messages)
  int64_t numel = 0;
};

struct TensorRef {
  std::shared_ptr<const StorageRef> storage;
  int64_t offset = 0;  // in elements
  Shape size;
  std::vector<int64_t> stride;  // in elements
};

enum class Global : uint8_t { OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, StorageClass };

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Type : uint8_t { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };
  Type type = Type::None;
  bool frozen = false;  // placed inside another container: may no longer change
  int depth = 0;        // containers nested in this one, itself included
  int64_t i = 0;        // Bool, Int
  double f = 0;
  std::string s;        // String; for Global, "module.name"
  std::vector<ValuePtr> items;                        // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;    // Dict (insertion order)
  Global global = Global::OrderedDict;
  DType storage_dtype = DType::U8;                    // Global StorageClass
  std::shared_ptr<const StorageRef> storage;          // Storage
  TensorRef tensor;                                   // Tensor
};

const char* type_name(Value::Type t);

// Unpickle `size` bytes. `label` names the data in error messages (e.g. "model.pth: archive/data.pkl").
// Throws BadFile for malformed or hostile input, Unsupported for valid torch data x2v cannot hold
// (float64 tensors, ...).
ValuePtr unpickle(const uint8_t* data, size_t size, const std::string& label, const Limits& limits = {});

}  // namespace x2v::io::pickle
