// predis._core.TrafficSplitHash: the A/B split's keyed BLAKE2b of uint64 keys into buckets,
// a whole array per call with the GIL released (predis.mlops.abtest.TrafficSplit uses it).
#include <cstdint>
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "bindings/errors.hpp"
#include "bindings/register.hpp"
#include "bindings/without_gil.hpp"
#include "predis/blake2b.hpp"

namespace py = pybind11;

namespace predis::bindings {

void register_split(py::module_& m) {
  py::class_<KeyedBlake2b8>(m, "TrafficSplitHash",
                            "Keyed BLAKE2b (8-byte digest) of uint64 keys, as hashlib computes "
                            "it for key.to_bytes(8, 'little').")
      .def(py::init([](const py::bytes& secret) {
             const std::string s = secret;
             if (s.empty() || s.size() > KeyedBlake2b8::kMaxKeyBytes)
               fail(ErrorKind::kInvalidArgument, "secret must be 1 to 64 bytes");
             return KeyedBlake2b8(reinterpret_cast<const uint8_t*>(s.data()), s.size());
           }),
           py::arg("secret"))
      .def(
          "buckets",
          [](const KeyedBlake2b8& h, const py::array_t<uint64_t, py::array::c_style>& keys,
             uint32_t n_buckets) {
            if (keys.ndim() != 1) fail(ErrorKind::kInvalidArgument, "keys must be 1-D");
            if (n_buckets == 0 || n_buckets > 65536)
              fail(ErrorKind::kInvalidArgument, "n_buckets must be in [1, 65536]");
            const auto n = static_cast<std::size_t>(keys.shape(0));
            py::array_t<uint16_t> out(static_cast<py::ssize_t>(n));
            const uint64_t* k = keys.data();
            uint16_t* o = out.mutable_data();
            without_gil([&] {
              for (std::size_t i = 0; i < n; ++i)
                o[i] = static_cast<uint16_t>(h.hash(k[i]) % n_buckets);
            });
            return out;
          },
          py::arg("keys"), py::arg("n_buckets"),
          "Each key's digest (little-endian u64) modulo n_buckets, as a uint16 array.")
      .def(
          "digest", [](const KeyedBlake2b8& h, uint64_t key) { return h.hash(key); },
          py::arg("key"), "One key's 8-byte digest read as a little-endian u64.");
}

}  // namespace predis::bindings
