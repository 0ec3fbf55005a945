// predis._core.CoreCache: argument conversion and validation around a Table. Everything a
// caller passes is checked here, before the table is touched, so bad input leaves the cache
// unchanged. Batch calls release the GIL while the table works.
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/cuda_array.hpp"
#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "bindings/without_gil.hpp"
#include "predis/demand_tap.hpp"
#include "predis/table.hpp"

namespace py = pybind11;

namespace predis::bindings {
namespace {

// A borrowed contiguous view of a bytes-like object, released with the GIL held.
class ByteView {
 public:
  ByteView() = default;
  explicit ByteView(PyObject* obj, const char* what) {
    if (PyUnicode_Check(obj)) {
      fail(ErrorKind::kInvalidValue,
           std::string(what) + " must be bytes-like, not str; encode it first");
    }
    if (PyObject_GetBuffer(obj, &view_, PyBUF_C_CONTIGUOUS) != 0) {
      PyErr_Clear();
      fail(ErrorKind::kInvalidValue, std::string(what) +
                                         " must be a C-contiguous bytes-like object "
                                         "(bytes, bytearray, memoryview, numpy array), not " +
                                         Py_TYPE(obj)->tp_name);
    }
    held_ = true;
  }
  ByteView(ByteView&& o) noexcept : view_(o.view_), held_(o.held_) { o.held_ = false; }
  ByteView& operator=(ByteView&&) = delete;
  ByteView(const ByteView&) = delete;
  ~ByteView() {
    if (held_) PyBuffer_Release(&view_);
  }
  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  std::size_t size() const { return static_cast<std::size_t>(view_.len); }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

// Converts one Python key. The returned KeyRef points into `obj`, which the caller keeps alive.
KeyRef convert_key(PyObject* obj) {
  if (PyBool_Check(obj)) {
    fail(ErrorKind::kInvalidKey, "keys must be int, bytes or str, not bool");
  }
  if (!PyLong_Check(obj) && !PyBytes_Check(obj) && !PyUnicode_Check(obj) && PyIndex_Check(obj)) {
    // numpy integer scalars and other __index__ integers are ints.
    py::object as_int = py::reinterpret_steal<py::object>(PyNumber_Index(obj));
    if (!as_int) {
      PyErr_Clear();
      fail(ErrorKind::kInvalidKey,
           std::string("keys must be int, bytes or str, not ") + Py_TYPE(obj)->tp_name);
    }
    return convert_key(as_int.ptr());
  }
  if (PyLong_Check(obj)) {
    const unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
      PyErr_Clear();
      fail(ErrorKind::kInvalidKey, "int keys must be in [0, 2**64 - 1], got " +
                                       py::repr(py::handle(obj)).cast<std::string>());
    }
    return KeyRef::from_int(v);
  }
  const char* data = nullptr;
  Py_ssize_t len = 0;
  if (PyBytes_Check(obj)) {
    data = PyBytes_AS_STRING(obj);
    len = PyBytes_GET_SIZE(obj);
  } else if (PyUnicode_Check(obj)) {
    data = PyUnicode_AsUTF8AndSize(obj, &len);  // cached on the str object
    if (data == nullptr) {
      PyErr_Clear();
      fail(ErrorKind::kInvalidKey, "str key cannot be encoded as UTF-8");
    }
  } else {
    fail(ErrorKind::kInvalidKey,
         std::string("keys must be int, bytes or str, not ") + Py_TYPE(obj)->tp_name);
  }
  if (static_cast<std::size_t>(len) > kMaxKeyBytes) {
    fail(ErrorKind::kInvalidKey, "key of " + std::to_string(len) + " bytes exceeds the " +
                                     std::to_string(kMaxKeyBytes) + "-byte limit");
  }
  return KeyRef::from_bytes(reinterpret_cast<const uint8_t*>(data), static_cast<uint32_t>(len));
}

// A batch of keys: a 1-D C-contiguous uint64 (or non-negative int64) array, or a sequence.
class KeyList {
 public:
  explicit KeyList(const py::handle& keys) {
    if (py::isinstance<py::array>(keys)) {
      auto arr = py::reinterpret_borrow<py::array>(keys);
      if (arr.ndim() != 1)
        fail(ErrorKind::kInvalidArgument,
             "key array must be 1-D, got " + std::to_string(arr.ndim()) + "-D");
      if (!(arr.flags() & py::array::c_style)) {
        fail(ErrorKind::kInvalidArgument,
             "key array must be C-contiguous; pass np.ascontiguousarray(keys)");
      }
      // By kind, size and byte order, not identity: np.ulonglong is a distinct dtype object.
      const auto dt = arr.dtype();
      const bool native = dt.byteorder() == '=' || dt.byteorder() == '<' || dt.byteorder() == '|';
      const bool eight = dt.itemsize() == 8 && native;
      if (eight && dt.kind() == 'u') {
        array_ = arr;
      } else if (eight && dt.kind() == 'i') {
        const auto* p = static_cast<const int64_t*>(arr.data());
        for (py::ssize_t i = 0; i < arr.shape(0); ++i) {
          if (p[i] < 0)
            fail(ErrorKind::kInvalidKey, "int keys must be non-negative, got " +
                                             std::to_string(p[i]) + " at index " +
                                             std::to_string(i));
        }
        array_ = arr;
      } else {
        fail(ErrorKind::kInvalidArgument,
             "key array dtype must be uint64 or int64, got " + py::str(dt).cast<std::string>());
      }
      batch_.n = static_cast<std::size_t>(arr.shape(0));
      batch_.ints = static_cast<const uint64_t*>(arr.data());
      return;
    }
    if (PyUnicode_Check(keys.ptr()) || PyBytes_Check(keys.ptr())) {
      fail(ErrorKind::kInvalidArgument,
           "keys must be a sequence of keys or an integer array, not a single str/bytes");
    }
    // A set or a generator has no order to match results to, so only sequences are batches.
    if (!PySequence_Check(keys.ptr())) {
      fail(ErrorKind::kInvalidArgument,
           std::string("keys must be a sequence or a numpy integer array, not ") +
               Py_TYPE(keys.ptr())->tp_name);
    }
    // A tuple snapshot holds a reference to every key, so a caller's list can be changed by
    // another thread while the GIL is released without freeing keys the table is reading.
    PyObject* seq = PySequence_Tuple(keys.ptr());
    if (seq == nullptr) {
      PyErr_Clear();
      fail(ErrorKind::kInvalidArgument,
           std::string("keys must be a sequence or a numpy integer array, not ") +
               Py_TYPE(keys.ptr())->tp_name);
    }
    // Own the sequence: its items stay alive while the GIL is released.
    owner_ = py::reinterpret_steal<py::object>(seq);
    const Py_ssize_t n = PyTuple_GET_SIZE(seq);
    refs_.reserve(static_cast<std::size_t>(n));
    for (Py_ssize_t i = 0; i < n; ++i) refs_.push_back(convert_key(PyTuple_GET_ITEM(seq, i)));
    batch_.n = refs_.size();
    batch_.refs = refs_.data();
  }
  const KeyBatch& batch() const { return batch_; }
  std::size_t size() const { return batch_.n; }

 private:
  py::object owner_;
  py::array array_;
  std::vector<KeyRef> refs_;
  KeyBatch batch_;
};

py::array_t<bool> bool_array(std::size_t n) {
  return py::array_t<bool>(static_cast<py::ssize_t>(n));
}

template <class T>
py::array owning_array(std::vector<T>&& v) {
  auto holder = std::make_unique<std::vector<T>>(std::move(v));
  const auto n = static_cast<py::ssize_t>(holder->size());
  T* data = holder->data();
  py::capsule owner(holder.get(), [](void* p) {
    std::unique_ptr<std::vector<T>> reclaimed(static_cast<std::vector<T>*>(p));
  });
  holder.release();
  return py::array_t<T>({n}, {static_cast<py::ssize_t>(sizeof(T))}, data, owner);
}

class CoreCache {
 public:
  CoreCache(const std::string& backend, uint64_t capacity_bytes, uint64_t max_items,
            uint64_t max_value_size, const std::string& policy, bool manual_clock,
            uint64_t log_capacity, double sample_rate) {
    TableConfig c;
    if (capacity_bytes < 1024)
      fail(ErrorKind::kInvalidArgument,
           "capacity_bytes must be at least 1024, got " + std::to_string(capacity_bytes));
    if (max_items < 1) fail(ErrorKind::kInvalidArgument, "max_items must be at least 1");
    if (max_items > (uint64_t{1} << 36))
      fail(ErrorKind::kInvalidArgument, "max_items must be at most 2**36");
    if (max_value_size > std::numeric_limits<uint32_t>::max() - kMaxKeyBytes - 64) {
      fail(ErrorKind::kInvalidArgument, "max_value_size must be below 4 GiB");
    }
    if (policy == "lru") {
      c.policy = Policy::kLru;
    } else if (policy == "lfu") {
      c.policy = Policy::kLfu;
    } else {
      fail(ErrorKind::kInvalidArgument, "policy must be 'lru' or 'lfu', got '" + policy + "'");
    }
    if (!(sample_rate >= 0.0 && sample_rate <= 1.0))
      fail(ErrorKind::kInvalidArgument, "sample_rate must be in [0, 1]");
    if (log_capacity < 2 || log_capacity > (uint64_t{1} << 30))
      fail(ErrorKind::kInvalidArgument, "log_capacity must be in [2, 2**30]");
    c.capacity_bytes = capacity_bytes;
    c.max_items = max_items;
    c.max_value_size = static_cast<uint32_t>(max_value_size);
    c.manual_clock = manual_clock;
    c.log_capacity = static_cast<std::size_t>(log_capacity);
    c.sample_rate = sample_rate;
    try {
      py::gil_scoped_release nogil;  // creating a CUDA context can take a while
      table_ = make_table(backend, c);
    } catch (const std::invalid_argument& e) {
      fail(ErrorKind::kInvalidArgument, e.what());
    }
    if (table_->footprint(KeyKind::kInt, 0, c.max_value_size) > capacity_bytes) {
      fail(ErrorKind::kInvalidArgument,
           "max_value_size " + std::to_string(max_value_size) + " does not fit in capacity_bytes " +
               std::to_string(capacity_bytes) + "; raise capacity_bytes or lower max_value_size");
    }
  }

  py::object get(const py::handle& key) {
    const KeyRef k = convert_key(key.ptr());
    struct Sink final : ValueSink {
      PyObject* out = nullptr;
      void take(const uint8_t* data, uint32_t len) override {
        out = PyBytes_FromStringAndSize(reinterpret_cast<const char*>(data), len);
      }
    } sink;
    if (!table_->get(k, sink)) return py::none();
    if (sink.out == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(sink.out);
  }

  bool contains(const py::handle& key) { return table_->contains(convert_key(key.ptr())); }

  void put(const py::handle& key, const py::handle& value, uint64_t ttl_ns) {
    const KeyRef k = convert_key(key.ptr());
    ByteView v(value.ptr(), "value");
    check_value(k, v.size(), -1);
    table_->put(k, ValueRef{v.data(), static_cast<uint32_t>(v.size())}, ttl_ns);
  }

  void put_prefetched(const py::handle& key, const py::handle& value, uint64_t ttl_ns,
                      double confidence) {
    if (!(confidence >= 0.0 && confidence <= 1.0)) {
      fail(ErrorKind::kInvalidArgument,
           "confidence must be in [0, 1], got " + std::to_string(confidence));
    }
    const KeyRef k = convert_key(key.ptr());
    ByteView v(value.ptr(), "value");
    check_value(k, v.size(), -1);
    table_->put_prefetched(k, ValueRef{v.data(), static_cast<uint32_t>(v.size())}, ttl_ns,
                           confidence);
  }

  bool erase(const py::handle& key) { return table_->erase(convert_key(key.ptr())); }

  py::list mget(const py::handle& keys) {
    KeyList kl(keys);
    const std::size_t n = kl.size();
    std::vector<uint8_t> data;
    std::vector<int64_t> offsets(n + 1);
    std::vector<uint8_t> found(n);
    {
      py::gil_scoped_release nogil;
      table_->get_batch(kl.batch(), data, offsets.data(), found.data());
    }
    py::list out(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (found[i]) {
        out[i] = py::bytes(reinterpret_cast<const char*>(data.data()) + offsets[i],
                           static_cast<std::size_t>(offsets[i + 1] - offsets[i]));
      } else {
        out[i] = py::none();
      }
    }
    return out;
  }

  py::tuple mget_arrays(const py::handle& keys) {
    KeyList kl(keys);
    const std::size_t n = kl.size();
    std::vector<uint8_t> data;
    std::vector<int64_t> offsets(n + 1);
    auto found = bool_array(n);
    auto* f = reinterpret_cast<uint8_t*>(found.mutable_data());
    {
      py::gil_scoped_release nogil;
      table_->get_batch(kl.batch(), data, offsets.data(), f);
    }
    return py::make_tuple(owning_array(std::move(offsets)), owning_array(std::move(data)), found);
  }

  py::array_t<bool> get_into(const py::handle& keys, const py::handle& out_obj) {
    if (has_cuda_array_interface(keys) || has_cuda_array_interface(out_obj)) {
      return get_into_device(keys, out_obj);
    }
    KeyList kl(keys);
    if (!py::isinstance<py::array>(out_obj))
      fail(ErrorKind::kInvalidArgument, "out must be a 2-D uint8 numpy array");
    auto out = py::reinterpret_borrow<py::array>(out_obj);
    if (out.ndim() != 2 || !out.dtype().is(py::dtype::of<uint8_t>())) {
      fail(ErrorKind::kInvalidArgument, "out must be a 2-D uint8 numpy array");
    }
    if (!(out.flags() & py::array::c_style))
      fail(ErrorKind::kInvalidArgument, "out must be C-contiguous");
    if (!out.writeable()) fail(ErrorKind::kInvalidArgument, "out must be writeable");
    if (static_cast<std::size_t>(out.shape(0)) != kl.size()) {
      fail(ErrorKind::kInvalidArgument, "out has " + std::to_string(out.shape(0)) + " rows for " +
                                            std::to_string(kl.size()) + " keys");
    }
    const auto width = static_cast<std::size_t>(out.shape(1));
    auto found = bool_array(kl.size());
    auto* f = reinterpret_cast<uint8_t*>(found.mutable_data());
    auto* o = static_cast<uint8_t*>(out.mutable_data());
    TooLong too_long;
    {
      py::gil_scoped_release nogil;
      too_long = table_->get_into(kl.batch(), o, width, f);
    }
    report_too_long(too_long, width);
    return found;
  }

  void mput(const py::handle& keys, const py::handle& values, uint64_t ttl_ns) {
    if (has_cuda_array_interface(keys) || has_cuda_array_interface(values)) {
      mput_device(keys, values, ttl_ns);
      return;
    }
    KeyList kl(keys);
    const std::size_t n = kl.size();
    std::vector<ValueRef> refs(n);
    std::vector<ByteView> views;
    py::object owner;
    if (py::isinstance<py::array>(values)) {
      auto arr = py::reinterpret_borrow<py::array>(values);
      if (arr.ndim() != 2 || !arr.dtype().is(py::dtype::of<uint8_t>()) ||
          !(arr.flags() & py::array::c_style)) {
        fail(ErrorKind::kInvalidArgument,
             "a values array must be 2-D, uint8 and C-contiguous (one row per key)");
      }
      if (static_cast<std::size_t>(arr.shape(0)) != n) {
        fail(ErrorKind::kInvalidArgument, "values has " + std::to_string(arr.shape(0)) +
                                              " rows for " + std::to_string(n) + " keys");
      }
      const auto width = static_cast<std::size_t>(arr.shape(1));
      const auto* base = static_cast<const uint8_t*>(arr.data());
      const KeyBatch& batch = kl.batch();
      if (batch.ints != nullptr) {
        // Int keys and rows of one width: every entry has the same footprint, so the
        // first key's check is every key's.
        if (n != 0) check_value(batch.at(0), width, 0);
      } else {
        for (std::size_t i = 0; i < n; ++i) {
          check_value(batch.at(i), width, static_cast<long long>(i));
        }
      }
      for (std::size_t i = 0; i < n; ++i) {
        refs[i] = ValueRef{base + i * width, static_cast<uint32_t>(width)};
      }
      owner = arr;
    } else {
      if (PyUnicode_Check(values.ptr()) || PyBytes_Check(values.ptr())) {
        fail(ErrorKind::kInvalidArgument,
             "values must be a sequence of bytes-like objects or a 2-D uint8 array");
      }
      PyObject* seq = PySequence_Check(values.ptr()) ? PySequence_Tuple(values.ptr()) : nullptr;
      if (seq == nullptr) {
        PyErr_Clear();
        fail(ErrorKind::kInvalidArgument,
             "values must be a sequence of bytes-like objects or a 2-D uint8 array");
      }
      owner = py::reinterpret_steal<py::object>(seq);
      if (static_cast<std::size_t>(PyTuple_GET_SIZE(seq)) != n) {
        fail(ErrorKind::kInvalidArgument, "got " + std::to_string(PyTuple_GET_SIZE(seq)) +
                                              " values for " + std::to_string(n) + " keys");
      }
      views.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        views.emplace_back(PyTuple_GET_ITEM(seq, static_cast<Py_ssize_t>(i)), "value");
        check_value(kl.batch().at(i), views.back().size(), static_cast<long long>(i));
        refs[i] = ValueRef{views.back().data(), static_cast<uint32_t>(views.back().size())};
      }
    }
    py::gil_scoped_release nogil;
    table_->put_batch(kl.batch(), refs.data(), ttl_ns);
  }

  py::array_t<bool> mdelete(const py::handle& keys) {
    if (has_cuda_array_interface(keys)) {
      const CudaArray k = parse_cuda_array(keys, "keys", 1, "u8", false);
      DeviceBatchOps& ops = device_ops();
      auto erased = bool_array(k.rows());
      auto* e = reinterpret_cast<uint8_t*>(erased.mutable_data());
      py::gil_scoped_release nogil;
      ops.erase_device(device_keys(k), k.rows(), e, k.stream);
      return erased;
    }
    KeyList kl(keys);
    auto erased = bool_array(kl.size());
    auto* e = reinterpret_cast<uint8_t*>(erased.mutable_data());
    {
      py::gil_scoped_release nogil;
      table_->erase_batch(kl.batch(), e);
    }
    return erased;
  }

  py::array_t<bool> contains_many(const py::handle& keys) {
    if (has_cuda_array_interface(keys)) {
      const CudaArray k = parse_cuda_array(keys, "keys", 1, "u8", false);
      DeviceBatchOps& ops = device_ops();
      auto out = bool_array(k.rows());
      auto* o = reinterpret_cast<uint8_t*>(out.mutable_data());
      py::gil_scoped_release nogil;
      ops.contains_device(device_keys(k), k.rows(), o, k.stream);
      return out;
    }
    KeyList kl(keys);
    auto out = bool_array(kl.size());
    auto* o = reinterpret_cast<uint8_t*>(out.mutable_data());
    {
      py::gil_scoped_release nogil;
      table_->contains_batch(kl.batch(), o);
    }
    return out;
  }

  void clear() {
    py::gil_scoped_release nogil;
    table_->clear();
  }

  py::dict stats() const {
    const StatsSnapshot s = table_->stats();
    py::dict d;
    d["hits"] = s.hits;
    d["misses"] = s.misses;
    d["inserts"] = s.inserts;
    d["updates"] = s.updates;
    d["deletes"] = s.deletes;
    d["evictions"] = s.evictions;
    d["expirations"] = s.expirations;
    d["items"] = s.items;
    d["bytes_used"] = s.bytes_used;
    d["capacity_bytes"] = s.capacity_bytes;
    d["max_items"] = s.max_items;
    d["bytes_reserved"] = s.bytes_reserved;
    d["table_bytes"] = s.table_bytes;
    d["events_logged"] = s.events_logged;
    d["events_dropped"] = s.events_dropped;
    d["events_pending"] = s.events_pending;
    d["log_capacity"] = s.log_capacity;
    d["latency_period"] = s.latency_period;
    // op -> (per-bucket counts, not cumulative; sum of the timed durations in ns)
    py::dict latency;
    for (std::size_t i = 0; i < kNumOps; ++i) {
      const LatencyHistogram& h = s.latency[i];
      py::list counts(kLatencyBuckets);
      for (std::size_t b = 0; b < kLatencyBuckets; ++b) counts[b] = h.counts[b];
      latency[kOpNames[i]] = py::make_tuple(counts, h.sum_ns);
    }
    d["latency"] = latency;
    return d;
  }

  std::size_t drain_events_into(const py::array& out) {
    if (out.ndim() != 1 || out.itemsize() != static_cast<py::ssize_t>(sizeof(AccessEvent)) ||
        !(out.flags() & py::array::c_style) || !out.writeable()) {
      fail(ErrorKind::kInvalidArgument,
           "out must be a writeable, C-contiguous 1-D array of 24-byte access events");
    }
    auto* dst = static_cast<AccessEvent*>(py::array(out).mutable_data());
    const auto n = static_cast<std::size_t>(out.shape(0));
    std::size_t got = 0;
    // Read with the GIL held: attach_demand_tap() changes it only with the GIL held.
    const std::shared_ptr<DemandTap> tap = tap_;
    got = without_gil([&] {
      const std::size_t drained = table_->drain_events(dst, n);
      if (tap && drained > 0) tap->offer(dst, drained);
      return drained;
    });
    return got;
  }

  // Every later drain also offers its events to `tap` (None: to none).
  void attach_demand_tap(std::shared_ptr<DemandTap> tap) { tap_ = std::move(tap); }
  std::shared_ptr<DemandTap> demand_tap() const { return tap_; }

  uint64_t footprint(const py::handle& key, uint64_t value_len) const {
    const KeyRef k = convert_key(key.ptr());
    if (value_len > table_->config().max_value_size) {
      fail(ErrorKind::kValueTooLarge, "value_len " + std::to_string(value_len) +
                                          " exceeds max_value_size " +
                                          std::to_string(table_->config().max_value_size));
    }
    return table_->footprint(k.kind, k.len, static_cast<uint32_t>(value_len));
  }

  Table& table() { return *table_; }

 private:
  // ---- device arrays (__cuda_array_interface__): validated here, run by the backend ----

  DeviceBatchOps& device_ops() {
    DeviceBatchOps* ops = table_->device_ops();
    if (ops == nullptr) {
      fail(ErrorKind::kInvalidArgument,
           std::string("device arrays (__cuda_array_interface__) need backend='cuda'; this "
                       "cache uses '") +
               table_->backend() +
               "': copy them to host numpy arrays first, or create the cache with "
               "backend='cuda'");
    }
    return *ops;
  }

  static const uint64_t* device_keys(const CudaArray& k) {
    return reinterpret_cast<const uint64_t*>(k.ptr);
  }

  static void require_both(const py::handle& a, const py::handle& b, const char* what) {
    if (!has_cuda_array_interface(a) || !has_cuda_array_interface(b)) {
      fail(ErrorKind::kInvalidArgument,
           std::string(what) +
               ": keys and the other array must both be device arrays or both host arrays");
    }
  }

  py::array_t<bool> get_into_device(const py::handle& keys, const py::handle& out_obj) {
    require_both(keys, out_obj, "get_into");
    const CudaArray k = parse_cuda_array(keys, "keys", 1, "u8", false);
    const CudaArray out = parse_cuda_array(out_obj, "out", 2, "u1", true);
    if (out.rows() != k.rows()) {
      fail(ErrorKind::kInvalidArgument, "out has " + std::to_string(out.rows()) + " rows for " +
                                            std::to_string(k.rows()) + " keys");
    }
    DeviceBatchOps& ops = device_ops();
    const std::size_t n = k.rows();
    const std::size_t width = out.width();
    auto found = bool_array(n);
    auto* f = reinterpret_cast<uint8_t*>(found.mutable_data());
    TooLong too_long;
    {
      py::gil_scoped_release nogil;
      too_long = ops.get_into_device(device_keys(k), n, reinterpret_cast<uint8_t*>(out.ptr), width,
                                     f, out.stream != 0 ? out.stream : k.stream);
    }
    report_too_long(too_long, width);
    return found;
  }

  void mput_device(const py::handle& keys, const py::handle& values, uint64_t ttl_ns) {
    require_both(keys, values, "mput");
    const CudaArray k = parse_cuda_array(keys, "keys", 1, "u8", false);
    const CudaArray v = parse_cuda_array(values, "values", 2, "u1", false);
    if (v.rows() != k.rows()) {
      fail(ErrorKind::kInvalidArgument, "values has " + std::to_string(v.rows()) + " rows for " +
                                            std::to_string(k.rows()) + " keys");
    }
    if (k.rows() != 0) check_value(KeyRef::from_int(0), v.width(), 0);
    DeviceBatchOps& ops = device_ops();
    py::gil_scoped_release nogil;
    ops.put_device(device_keys(k), k.rows(), reinterpret_cast<const uint8_t*>(v.ptr), v.width(),
                   ttl_ns, v.stream != 0 ? v.stream : k.stream);
  }

  static void report_too_long(const TooLong& too_long, std::size_t width) {
    if (too_long.count == 0) return;
    fail(ErrorKind::kValueTooLarge, std::to_string(too_long.count) +
                                        " value(s) longer than the row width " +
                                        std::to_string(width) + "; the first is at index " +
                                        std::to_string(too_long.first_index) + " with " +
                                        std::to_string(too_long.first_length) + " bytes");
  }

  // index < 0 for single-key calls.
  // The messages are built only on failure: this runs once per key of a batch.
  void check_value(const KeyRef& key, std::size_t len, long long index) const {
    const TableConfig& c = table_->config();
    const auto where = [index] {
      return index < 0 ? std::string() : " at index " + std::to_string(index);
    };
    if (len > c.max_value_size) {
      fail(ErrorKind::kValueTooLarge, "value of " + std::to_string(len) + " bytes" + where() +
                                          " exceeds max_value_size " +
                                          std::to_string(c.max_value_size));
    }
    if (table_->footprint(key.kind, key.len, static_cast<uint32_t>(len)) > c.capacity_bytes) {
      fail(ErrorKind::kValueTooLarge, "entry" + where() + " needs more than capacity_bytes " +
                                          std::to_string(c.capacity_bytes));
    }
  }

  std::unique_ptr<Table> table_;
  std::shared_ptr<DemandTap> tap_;
};

}  // namespace

void register_cache(py::module_& m) {
  // The finite upper bounds (ns) of the latency buckets; the last bucket is +Inf.
  py::list bounds;
  for (std::size_t b = 0; b + 1 < kLatencyBuckets; ++b) bounds.append(latency_bucket_bound_ns(b));
  m.attr("LATENCY_BUCKET_BOUNDS_NS") = py::tuple(bounds);
  m.attr("DEFAULT_LATENCY_PERIOD") = kDefaultLatencyPeriod;
  m.def(
      "latency_bucket", [](uint64_t ns) { return latency_bucket(ns); }, py::arg("ns"),
      "The latency-histogram bucket the core counts a duration of `ns` nanoseconds in.");
  m.def(
      "key_hash", [](const py::handle& key) { return convert_key(key.ptr()).key; }, py::arg("key"),
      "The 64-bit key the table stores for `key`: the int itself, or the documented hash of a "
      "bytes/str key.");
  py::class_<CoreCache>(m, "CoreCache", "The native cache table. Use predis.Cache instead.")
      .def(py::init<const std::string&, uint64_t, uint64_t, uint64_t, const std::string&, bool,
                    uint64_t, double>(),
           py::arg("backend"), py::arg("capacity_bytes"), py::arg("max_items"),
           py::arg("max_value_size"), py::arg("policy"), py::arg("manual_clock"),
           py::arg("log_capacity"), py::arg("sample_rate"))
      .def_property_readonly("backend",
                             [](CoreCache& c) { return std::string(c.table().backend()); })
      .def_property_readonly("device_index",
                             [](CoreCache& c) {
                               DeviceBatchOps* ops = c.table().device_ops();
                               return ops == nullptr ? -1 : ops->device_index();
                             })
      .def("get", &CoreCache::get, py::arg("key"))
      .def("contains", &CoreCache::contains, py::arg("key"))
      .def("put", &CoreCache::put, py::arg("key"), py::arg("value"), py::arg("ttl_ns"))
      .def("put_prefetched", &CoreCache::put_prefetched, py::arg("key"), py::arg("value"),
           py::arg("ttl_ns"), py::arg("confidence"))
      .def("erase", &CoreCache::erase, py::arg("key"))
      .def("mget", &CoreCache::mget, py::arg("keys"))
      .def("mget_arrays", &CoreCache::mget_arrays, py::arg("keys"))
      .def("get_into", &CoreCache::get_into, py::arg("keys"), py::arg("out"))
      .def("mput", &CoreCache::mput, py::arg("keys"), py::arg("values"), py::arg("ttl_ns"))
      .def("mdelete", &CoreCache::mdelete, py::arg("keys"))
      .def("contains_many", &CoreCache::contains_many, py::arg("keys"))
      .def("clear", &CoreCache::clear)
      .def("__len__", [](CoreCache& c) { return c.table().size(); })
      .def("stats", &CoreCache::stats)
      .def("drain_events_into", &CoreCache::drain_events_into, py::arg("out"))
      .def("attach_demand_tap", &CoreCache::attach_demand_tap, py::arg("tap").none(true),
           "Offer every later drain's demand gets of int keys to `tap` (None: stop).")
      .def_property_readonly("demand_tap", &CoreCache::demand_tap)
      .def("footprint", &CoreCache::footprint, py::arg("key"), py::arg("value_len"))
      .def_property(
          "sample_rate", [](CoreCache& c) { return c.table().sample_rate(); },
          [](CoreCache& c, double r) {
            if (!(r >= 0.0 && r <= 1.0))
              fail(ErrorKind::kInvalidArgument, "sample_rate must be in [0, 1]");
            c.table().set_sample_rate(r);
          })
      .def_property(
          "latency_period", [](CoreCache& c) { return c.table().latency_period(); },
          [](CoreCache& c, uint64_t period) {
            if (period > (uint64_t{1} << 30) || (period & (period - 1)) != 0)
              fail(ErrorKind::kInvalidArgument,
                   "latency_sampling must be 0 (off) or a power of two up to 2**30, got " +
                       std::to_string(period));
            c.table().set_latency_period(static_cast<uint32_t>(period));
          })
      .def_property_readonly("manual_clock",
                             [](CoreCache& c) { return c.table().config().manual_clock; })
      .def(
          "advance_time",
          [](CoreCache& c, uint64_t ns) {
            if (!c.table().config().manual_clock)
              fail(ErrorKind::kInvalidArgument,
                   "advance_time needs a cache created with clock='manual'");
            if (!c.table().advance_time(ns)) {
              fail(ErrorKind::kInvalidArgument,
                   "advance_time would move the clock past 2**64 - 1 ns");
            }
          },
          py::arg("ns"))
      .def("now_ns", [](CoreCache& c) { return c.table().now(); });
}

}  // namespace predis::bindings
