#include "io/pickle.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "io/utf8.h"

namespace x2v::io::pickle {

const char* type_name(Value::Type t) {
  switch (t) {
    case Value::Type::None: return "None";
    case Value::Type::Bool: return "bool";
    case Value::Type::Int: return "int";
    case Value::Type::Float: return "float";
    case Value::Type::String: return "str";
    case Value::Type::Tuple: return "tuple";
    case Value::Type::List: return "list";
    case Value::Type::Dict: return "dict";
    case Value::Type::Global: return "global";
    case Value::Type::Storage: return "storage";
    case Value::Type::Tensor: return "tensor";
  }
  return "?";
}

namespace {

constexpr int kMaxRank = 8;  // as the safetensors reader

// Opcodes (pickletools' names).
enum : uint8_t {
  MARK = '(', STOP = '.', POP = '0', BININT = 'J', BININT1 = 'K', BININT2 = 'M', NONE = 'N', BINUNICODE = 'X',
  APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e', BINGET = 'h',
  LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's', TUPLE = 't',
  EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G', BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T',
  SHORT_BINSTRING = 'U', PROTO = 0x80, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88,
  NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94, FRAME = 0x95,
};

// Opcodes a state dict never needs but an attack does: named in the refusal.
const char* refused_opcode(uint8_t op) {
  switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 0x81: return "NEWOBJ";
    case 0x92: return "NEWOBJ_EX";
    case 'P': return "PERSID";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x8e: return "BINBYTES8";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    default: return nullptr;
  }
}

struct StorageType {
  const char* name;
  DType dtype;
};
constexpr StorageType kStorages[] = {
    {"FloatStorage", DType::F32},        {"HalfStorage", DType::F16},         {"BFloat16Storage", DType::BF16},
    {"LongStorage", DType::I64},         {"IntStorage", DType::I32},          {"ByteStorage", DType::U8},
    {"CharStorage", DType::I8},          {"BoolStorage", DType::BOOL},        {"Float8_e4m3fnStorage", DType::F8E4M3},
    {"Float8_e5m2Storage", DType::F8E5M2},
};
// torch storage classes x2v knows but cannot hold, and what they are.
constexpr std::pair<const char*, const char*> kUnsupportedStorages[] = {
    {"DoubleStorage", "float64"},           {"ShortStorage", "int16"},
    {"ComplexFloatStorage", "complex64"},   {"ComplexDoubleStorage", "complex128"},
    {"QInt8Storage", "qint8"},              {"QUInt8Storage", "quint8"},
    {"QInt32Storage", "qint32"},            {"QUInt4x2Storage", "quint4x2"},
    {"QUInt2x4Storage", "quint2x4"},        {"Float8_e4m3fnuzStorage", "float8_e4m3fnuz"},
    {"Float8_e5m2fnuzStorage", "float8_e5m2fnuz"}, {"UInt16Storage", "uint16"},
    {"UInt32Storage", "uint32"},            {"UInt64Storage", "uint64"},
    {"UntypedStorage", "untyped bytes"},
};

class Unpickler {
 public:
  Unpickler(const uint8_t* d, size_t n, const std::string& label, const Limits& lim)
      : d_(d), n_(n), label_(label), lim_(lim) {}

  ValuePtr run() {
    while (pos_ < n_) {
      op_pos_ = pos_;
      op_ = d_[pos_++];
      if (step()) return finish();
    }
    bad("the pickle ends without a STOP opcode (truncated data.pkl)");
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(ErrorKind::BadFile, label_, ": byte ", op_pos_, " (opcode 0x", hex(op_), "): ", what,
         ". The checkpoint is damaged or was not written by torch.save; re-download it or convert it to safetensors");
  }
  [[noreturn]] void hostile(const std::string& what) const {
    fail(ErrorKind::BadFile, label_, ": ", what,
         ", which a saved state dict never needs: the file may be malicious, and x2v refuses to load it. "
         "Only use checkpoints from sources you trust, preferably as safetensors");
  }
  static std::string hex(uint8_t b) {
    const char* h = "0123456789abcdef";
    return {h[b >> 4], h[b & 15]};
  }

  const uint8_t* take(size_t k) {
    if (k > n_ - pos_) bad("the pickle is truncated (" + std::to_string(k) + " more bytes needed)");
    const uint8_t* p = d_ + pos_;
    pos_ += k;
    return p;
  }
  uint64_t le(size_t k) {
    const uint8_t* p = take(k);
    uint64_t v = 0;
    for (size_t i = k; i-- > 0;) v = (v << 8) | p[i];
    return v;
  }

  ValuePtr make(Value::Type t) {
    if (++objects_ > lim_.max_objects) bad("more than " + std::to_string(lim_.max_objects) + " objects");
    auto v = std::make_shared<Value>();
    v->type = t;
    return v;
  }
  ValuePtr make_int(int64_t i) {
    auto v = make(Value::Type::Int);
    v->i = i;
    return v;
  }

  void push(ValuePtr v) {
    if (stack_.size() + marks_.size() >= lim_.max_stack)
      bad("the stack grows past " + std::to_string(lim_.max_stack) + " entries");
    stack_.push_back(std::move(v));
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  ValuePtr pop() {
    if (stack_.size() <= floor()) bad("stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() const {
    if (stack_.size() <= floor()) bad("stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) bad("no MARK to collect items from");
    std::vector<ValuePtr> items(stack_.begin() + static_cast<std::ptrdiff_t>(marks_.back()), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }

  // A value going inside a container may never change again: that keeps nesting depths exact
  // and makes reference cycles impossible.
  void adopt(Value& parent, const ValuePtr& child) {
    child->frozen = true;
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (parent.depth > lim_.max_depth) bad("containers nested deeper than " + std::to_string(lim_.max_depth));
  }
  ValuePtr container(Value::Type t, std::vector<ValuePtr> items) {
    auto v = make(t);
    v->depth = 1;
    for (const auto& it : items) adopt(*v, it);
    v->items = std::move(items);
    return v;
  }
  // The container that items go into: freezing the items first means a container can never be
  // put into itself.
  Value& insert_target(Value::Type t, const std::vector<ValuePtr>& items) {
    for (const auto& it : items) it->frozen = true;
    return mutable_target(t);
  }
  Value& mutable_target(Value::Type t) {
    const ValuePtr& v = top();
    if (v->type != t)
      bad(std::string("expected a ") + type_name(t) + " on the stack, found a " + type_name(v->type));
    if (v->frozen) bad(std::string("the pickle changes a ") + type_name(t) + " after using it");
    return *v;
  }
  void set_items(std::vector<ValuePtr> kv) {
    if (kv.size() % 2) bad("odd number of items for a dict");
    Value& dict = insert_target(Value::Type::Dict, kv);
    for (size_t i = 0; i < kv.size(); i += 2) {
      adopt(dict, kv[i]);
      adopt(dict, kv[i + 1]);
      dict.dict.emplace_back(std::move(kv[i]), std::move(kv[i + 1]));
    }
  }

  std::string read_string(uint64_t len, bool check_utf8 = true) {
    if (len > lim_.max_string) bad("a string of " + std::to_string(len) + " bytes (the limit is " + std::to_string(lim_.max_string) + ")");
    const char* p = reinterpret_cast<const char*>(take(static_cast<size_t>(len)));
    if (check_utf8 && !utf8_valid(p, static_cast<size_t>(len))) bad("a string that is not UTF-8");
    return std::string(p, static_cast<size_t>(len));
  }
  void push_string(uint64_t len) {
    auto v = make(Value::Type::String);
    v->s = read_string(len);
    push(std::move(v));
  }
  // GLOBAL's operands: a newline-terminated identifier path.
  std::string read_line() {
    size_t start = pos_;
    while (pos_ < n_ && d_[pos_] != '\n') {
      const uint8_t c = d_[pos_];
      if (!(std::isalnum(c) || c == '_' || c == '.')) bad("a GLOBAL name with a character that is not an identifier");
      if (++pos_ - start > 256) bad("a GLOBAL name longer than 256 bytes");
    }
    if (pos_ == n_) bad("the pickle is truncated inside a GLOBAL name");
    std::string s(reinterpret_cast<const char*>(d_ + start), pos_ - start);
    ++pos_;
    return s;
  }

  ValuePtr resolve(const std::string& module, const std::string& name) {
    auto g = make(Value::Type::Global);
    g->s = module + "." + name;
    if (module == "collections" && name == "OrderedDict") {
      g->global = Global::OrderedDict;
      return g;
    }
    if (module == "torch._utils") {
      if (name == "_rebuild_tensor_v2") g->global = Global::RebuildTensorV2;
      else if (name == "_rebuild_tensor") g->global = Global::RebuildTensor;
      else if (name == "_rebuild_parameter") g->global = Global::RebuildParameter;
      else hostile("the pickle imports " + g->s);
      return g;
    }
    if (module == "torch") {
      for (const auto& st : kStorages)
        if (name == st.name) {
          g->global = Global::StorageClass;
          g->storage_dtype = st.dtype;
          return g;
        }
      for (const auto& [st, what] : kUnsupportedStorages)
        if (name == st)
          fail(ErrorKind::Unsupported, label_, ": the checkpoint holds ", what, " tensors (torch.", name,
               "), which x2v does not read. Convert them in PyTorch (e.g. to float32 or bfloat16) and save again");
    }
    hostile("the pickle imports " + g->s);
  }

  void persistent_load() {
    ValuePtr pid = pop();
    if (pid->type != Value::Type::Tuple || pid->items.size() != 5 || pid->items[0]->type != Value::Type::String ||
        pid->items[0]->s != "storage")
      bad("a persistent id that is not ('storage', type, key, location, numel)");
    const auto& it = pid->items;
    if (it[1]->type != Value::Type::Global || it[1]->global != Global::StorageClass)
      bad("a storage whose type is not a torch storage class");
    if (it[2]->type != Value::Type::String || it[3]->type != Value::Type::String || it[4]->type != Value::Type::Int)
      bad("a storage with a malformed key, location or size");
    const std::string& key = it[2]->s;
    // Keys name archive entries: only the plain tokens torch writes, never a path.
    if (key.empty() || key.size() > 64 ||
        !std::all_of(key.begin(), key.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }))
      bad("a storage key \"" + key + "\" that is not a plain name");
    if (it[4]->i < 0) bad("storage " + key + " has a negative size");
    auto& slot = storages_[key];
    if (!slot) {
      auto s = std::make_shared<StorageRef>();
      s->key = key;
      s->dtype = it[1]->storage_dtype;
      s->torch_type = it[1]->s;
      s->numel = it[4]->i;
      slot = s;
    } else if (slot->dtype != it[1]->storage_dtype || slot->numel != it[4]->i) {
      bad("storage " + key + " is declared twice with different types or sizes");
    }
    auto v = make(Value::Type::Storage);
    v->storage = slot;
    push(std::move(v));
  }

  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what) {
    if (v->type != Value::Type::Tuple) bad(std::string("a tensor whose ") + what + " is not a tuple");
    if (v->items.size() > static_cast<size_t>(kMaxRank))
      bad(std::string("a tensor of rank ") + std::to_string(v->items.size()) + " (at most 8)");
    std::vector<int64_t> out;
    for (const auto& x : v->items) {
      if (x->type != Value::Type::Int || x->i < 0) bad(std::string("a tensor whose ") + what + " holds a non-integer or negative value");
      out.push_back(x->i);
    }
    return out;
  }
  static bool empty_dict_or_none(const ValuePtr& v) {
    return v->type == Value::Type::None || (v->type == Value::Type::Dict && v->dict.empty());
  }

  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a) {
    if (a[0]->type != Value::Type::Storage) bad("_rebuild_tensor called without a storage");
    if (a[1]->type != Value::Type::Int || a[1]->i < 0) bad("a tensor with a negative or non-integer storage offset");
    TensorRef t;
    t.storage = a[0]->storage;
    t.offset = a[1]->i;
    t.size = int_tuple(a[2], "size");
    t.stride = int_tuple(a[3], "stride");
    if (t.size.size() != t.stride.size()) bad("a tensor whose size and stride have different lengths");
    unsigned __int128 numel = 1;
    bool empty = false;
    for (int64_t d : t.size) {
      if (d == 0) {
        empty = true;
        continue;
      }
      numel *= static_cast<uint64_t>(d);
      if (numel > static_cast<uint64_t>(INT64_MAX)) bad("a tensor with an absurd shape " + shape_str(t.size));
    }
    // Every element a non-empty view reaches must lie inside its storage. The running maximum is
    // checked after each term: each term is < 2^126 and the sum so far < 2^63, so nothing overflows.
    if (!empty) {
      const unsigned __int128 limit = static_cast<uint64_t>(t.storage->numel);
      unsigned __int128 last = static_cast<uint64_t>(t.offset);
      for (size_t i = 0; i <= t.size.size(); ++i) {
        if (last >= limit)
          bad("a tensor of shape " + shape_str(t.size) + " at offset " + std::to_string(t.offset) +
              " reaches past the end of storage " + t.storage->key + " (" + std::to_string(t.storage->numel) + " elements)");
        if (i < t.size.size())
          last += static_cast<unsigned __int128>(static_cast<uint64_t>(t.size[i] - 1)) * static_cast<uint64_t>(t.stride[i]);
      }
    }
    auto v = make(Value::Type::Tensor);
    v->tensor = std::move(t);
    return v;
  }

  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args) {
    if (fn->type != Value::Type::Global)
      bad(std::string("REDUCE calls a ") + type_name(fn->type) + ", not an allowed function");
    if (args->type != Value::Type::Tuple) bad("REDUCE arguments are not a tuple");
    const auto& a = args->items;
    switch (fn->global) {
      case Global::OrderedDict: {
        if (!a.empty()) bad("OrderedDict built from arguments (torch.save writes OrderedDict() then items)");
        auto v = make(Value::Type::Dict);
        v->depth = 1;
        return v;
      }
      case Global::RebuildTensorV2:
        if (a.size() != 6 && a.size() != 7) bad("_rebuild_tensor_v2 with " + std::to_string(a.size()) + " arguments");
        if (a[4]->type != Value::Type::Bool) bad("_rebuild_tensor_v2: requires_grad is not a bool");
        if (!empty_dict_or_none(a[5])) hostile("a tensor carries backward hooks");
        if (a.size() == 7 && !empty_dict_or_none(a[6]))
          fail(ErrorKind::Unsupported, label_, ": a tensor carries extra metadata (conjugate/negative bits), which x2v "
               "does not read; save plain tensors (t.resolve_conj().resolve_neg())");
        return rebuild_tensor(a);
      case Global::RebuildTensor:
        if (a.size() != 4) bad("_rebuild_tensor with " + std::to_string(a.size()) + " arguments");
        return rebuild_tensor(a);
      case Global::RebuildParameter:
        if (a.size() != 3 || a[0]->type != Value::Type::Tensor || a[1]->type != Value::Type::Bool)
          bad("_rebuild_parameter without (tensor, requires_grad, hooks)");
        if (!empty_dict_or_none(a[2])) hostile("a parameter carries backward hooks");
        return a[0];
      case Global::StorageClass:
        hostile("the pickle calls " + fn->s);
    }
    bad("REDUCE on an unknown function");
  }

  // One opcode; true at STOP.
  bool step() {
    switch (op_) {
      case PROTO: {
        const uint64_t v = le(1);
        if (v < 2 || v > 5) bad("pickle protocol " + std::to_string(v));
        return false;
      }
      case FRAME: {
        // Frames only group opcodes for buffered reading; the bytes are all here already.
        const uint64_t len = le(8);
        if (len > n_ - pos_) bad("a frame longer than the rest of the pickle");
        return false;
      }
      case STOP: return true;
      case MARK:
        if (stack_.size() + marks_.size() >= lim_.max_stack) bad("too many open MARKs");
        marks_.push_back(stack_.size());
        return false;
      case POP: pop(); return false;
      case NONE: push(make(Value::Type::None)); return false;
      case NEWTRUE:
      case NEWFALSE: {
        auto v = make(Value::Type::Bool);
        v->i = op_ == NEWTRUE;
        push(std::move(v));
        return false;
      }
      case BININT: push(make_int(static_cast<int32_t>(static_cast<uint32_t>(le(4))))); return false;
      case BININT1: push(make_int(static_cast<int64_t>(le(1)))); return false;
      case BININT2: push(make_int(static_cast<int64_t>(le(2)))); return false;
      case LONG1:
      case LONG4: {
        uint64_t len = le(op_ == LONG1 ? 1 : 4);
        if (op_ == LONG4 && len > 0x7fffffffu) bad("a negative LONG4 length");
        if (len > 8) bad("an integer of " + std::to_string(len) + " bytes (more than 64 bits)");
        uint64_t u = len ? le(static_cast<size_t>(len)) : 0;
        if (len > 0 && len < 8 && (u >> (8 * len - 1)) & 1) u |= ~uint64_t{0} << (8 * len);  // sign-extend
        push(make_int(static_cast<int64_t>(u)));
        return false;
      }
      case BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | p[i];  // big-endian
        auto v = make(Value::Type::Float);
        std::memcpy(&v->f, &u, 8);
        push(std::move(v));
        return false;
      }
      case BINUNICODE: push_string(le(4)); return false;
      case SHORT_BINUNICODE: push_string(le(1)); return false;
      case BINUNICODE8: push_string(le(8)); return false;
      case SHORT_BINSTRING: push_string(le(1)); return false;
      case BINSTRING: {
        const uint64_t len = le(4);
        if (len > 0x7fffffffu) bad("a negative BINSTRING length");
        push_string(len);
        return false;
      }
      case EMPTY_TUPLE: push(container(Value::Type::Tuple, {})); return false;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const size_t k = static_cast<size_t>(op_ - TUPLE1 + 1);
        std::vector<ValuePtr> items(k);
        for (size_t i = k; i-- > 0;) items[i] = pop();
        push(container(Value::Type::Tuple, std::move(items)));
        return false;
      }
      case TUPLE: push(container(Value::Type::Tuple, pop_mark())); return false;
      case EMPTY_LIST: push(container(Value::Type::List, {})); return false;
      case LIST: push(container(Value::Type::List, pop_mark())); return false;
      case EMPTY_DICT: {
        auto v = make(Value::Type::Dict);
        v->depth = 1;
        push(std::move(v));
        return false;
      }
      case DICT: {
        auto items = pop_mark();
        auto v = make(Value::Type::Dict);
        v->depth = 1;
        push(std::move(v));
        set_items(std::move(items));
        return false;
      }
      case APPEND: {
        ValuePtr item = pop();
        Value& list = insert_target(Value::Type::List, {item});
        adopt(list, item);
        list.items.push_back(std::move(item));
        return false;
      }
      case APPENDS: {
        auto items = pop_mark();
        Value& list = insert_target(Value::Type::List, items);
        for (auto& it : items) {
          adopt(list, it);
          list.items.push_back(std::move(it));
        }
        return false;
      }
      case SETITEM: {
        ValuePtr v = pop(), k = pop();
        set_items({std::move(k), std::move(v)});
        return false;
      }
      case SETITEMS: set_items(pop_mark()); return false;
      case BINPUT: memo_put(le(1)); return false;
      case LONG_BINPUT: memo_put(le(4)); return false;
      case MEMOIZE: memo_put(memo_.size()); return false;
      case BINGET: memo_get(le(1)); return false;
      case LONG_BINGET: memo_get(le(4)); return false;
      case GLOBAL: {
        std::string module = read_line();
        std::string name = read_line();
        push(resolve(module, name));
        return false;
      }
      case STACK_GLOBAL: {
        ValuePtr name = pop(), module = pop();
        if (name->type != Value::Type::String || module->type != Value::Type::String)
          bad("STACK_GLOBAL without two strings");
        push(resolve(module->s, name->s));
        return false;
      }
      case BINPERSID: persistent_load(); return false;
      case REDUCE: {
        ValuePtr args = pop(), fn = pop();
        args->frozen = true;
        push(reduce(fn, args));
        return false;
      }
      case BUILD: {
        // torch.save gives an OrderedDict its attributes (`_metadata`) this way; they are not needed.
        ValuePtr state = pop();
        Value& target = mutable_target(Value::Type::Dict);
        if (state->type != Value::Type::Dict && state->type != Value::Type::None)
          bad(std::string("BUILD with a ") + type_name(state->type) + " state");
        (void)target;
        state->frozen = true;
        return false;
      }
      default:
        if (const char* name = refused_opcode(op_))
          hostile(std::string("the pickle uses opcode ") + name + " at byte " + std::to_string(op_pos_));
        bad("unknown or unsupported pickle opcode");
    }
  }

  void memo_put(uint64_t idx) {
    const ValuePtr& v = top();
    if (idx > 0xffffffffu) bad("memo index too large");
    auto it = memo_.find(static_cast<uint32_t>(idx));
    if (it != memo_.end()) {
      it->second = v;
      return;
    }
    if (memo_.size() >= lim_.max_memo) bad("more than " + std::to_string(lim_.max_memo) + " memo entries");
    memo_.emplace(static_cast<uint32_t>(idx), v);
  }
  void memo_get(uint64_t idx) {
    auto it = memo_.find(static_cast<uint32_t>(idx));
    if (it == memo_.end()) bad("memo index " + std::to_string(idx) + " was never stored");
    push(it->second);
  }

  ValuePtr finish() {
    if (!marks_.empty()) bad("STOP with an open MARK");
    ValuePtr v = pop();
    if (!stack_.empty()) bad("STOP leaves " + std::to_string(stack_.size()) + " values on the stack");
    if (pos_ != n_) bad(std::to_string(n_ - pos_) + " bytes after STOP");
    return v;
  }

  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  uint8_t op_ = 0;
  const std::string& label_;
  Limits lim_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
  std::map<std::string, std::shared_ptr<StorageRef>> storages_;
  size_t objects_ = 0;
};

}  // namespace

ValuePtr unpickle(const uint8_t* data, size_t size, const std::string& label, const Limits& limits) {
  Unpickler u(data, size, label, limits);
  return u.run();
}

}  // namespace x2v::io::pickle
