// gpuresample._core: the border between Python's arrays and the CPU loops. Every argument
// is checked here (dimensions, dtypes, contiguity, index ranges, scratch sizes) before a
// loop runs, and a bad one raises TypeError or ValueError: the loops trust what they get.
//
// Strides are kept in bytes, as the loops step through memory with them.

#ifndef GPURESAMPLE_ARRAYS_HPP
#define GPURESAMPLE_ARRAYS_HPP

#include "core.hpp"

#include <nanobind/ndarray.h>

#include <cstdint>
#include <string>

namespace gr {

namespace nb = nanobind;

// An array the loop reads (read-only arrays welcome) and one it writes.
using InArray = nb::ndarray<nb::ro, nb::device::cpu>;
using OutArray = nb::ndarray<nb::device::cpu>;

[[noreturn]] inline void type_error(const char* function, const std::string& why)
{
    throw nb::type_error((std::string("gpuresample._core.") + function + ": " + why).c_str());
}

[[noreturn]] inline void value_error(const char* function, const std::string& why)
{
    throw nb::value_error((std::string("gpuresample._core.") + function + ": " + why).c_str());
}

inline void require(bool condition, const char* function, const std::string& why)
{
    if (!condition) {
        value_error(function, why);
    }
}

// A strided view of an n-D array (n <= 3): data, extents, byte strides.
struct View {
    char* data;
    int ndim;
    std::int64_t shape[3];
    std::int64_t stride[3];  // bytes
    nb::dlpack::dtype dtype;
    std::int64_t itemsize;
};

template <typename Array>
View view(const Array& a, int ndim, const char* function, const char* name)
{
    if (static_cast<int>(a.ndim()) != ndim) {
        value_error(function, std::string(name) + " must have " + std::to_string(ndim) + " dimensions, not " +
                                  std::to_string(a.ndim()));
    }
    View v{};
    v.data = static_cast<char*>(const_cast<void*>(static_cast<const void*>(a.data())));
    v.ndim = ndim;
    v.dtype = a.dtype();
    v.itemsize = static_cast<std::int64_t>(a.itemsize());
    for (int i = 0; i < ndim; ++i) {
        v.shape[i] = static_cast<std::int64_t>(a.shape(i));
        v.stride[i] = a.stride(i) * v.itemsize;
    }
    return v;
}

// Whether a view is C-contiguous (extents of 1 may have any stride).
inline bool c_contiguous(const View& v)
{
    std::int64_t expected = v.itemsize;
    for (int i = v.ndim - 1; i >= 0; --i) {
        if (v.shape[i] != 1 && v.stride[i] != expected) {
            return false;
        }
        expected *= v.shape[i];
    }
    return true;
}

template <typename T>
bool is(const nb::dlpack::dtype& d)
{
    return d == nb::dtype<T>();
}

// bool data is read as uint8 (0 or 1), as the CPU backend's label views do.
inline nb::dlpack::dtype bool_as_uint8(nb::dlpack::dtype d)
{
    return is<bool>(d) ? nb::dtype<std::uint8_t>() : d;
}

// float16 (labels: read as gr_half, compared by value).
inline bool is_float16(const nb::dlpack::dtype& d)
{
    return d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float) && d.bits == 16 && d.lanes == 1;
}

inline std::string dtype_name(const nb::dlpack::dtype& d)
{
    const char* kind = d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Float)  ? "float"
                       : d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::UInt) ? "uint"
                       : d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Int)  ? "int"
                       : d.code == static_cast<std::uint8_t>(nb::dlpack::dtype_code::Bool) ? "bool"
                                                                                           : "other";
    return std::string(kind) + std::to_string(d.bits);
}

template <typename T>
struct tag {
    using type = T;
};

template <typename... T>
struct types {
};

// Dtypes the loops read and write: every integer width, signed and unsigned, and float32/64.
using all_types = types<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t,
                        std::uint64_t, std::int64_t, float, double>;
using float_types = types<float, double>;

// fn(tag<T>()) for the T of `types` whose dtype is d; TypeError when none is.
template <typename Fn, typename... T>
void dispatch(const nb::dlpack::dtype& d, types<T...>, const char* function, const char* name, Fn&& fn)
{
    const bool done = ((is<T>(d) ? (fn(tag<T>()), true) : false) || ...);
    if (!done) {
        type_error(function, std::string("no loop for ") + name + " of dtype " + dtype_name(d));
    }
}

// The working type of an input type: float32 for float32, float64 for everything else.
template <typename In>
struct work_of {
    using type = double;
};
template <>
struct work_of<float> {
    using type = float;
};

// A table argument (index or weight rows, or a vector) as a C-contiguous array of T: the
// object as given when it is one already, else NumPy's copy of it (numpy.ascontiguousarray).
template <typename T>
struct Contiguous {
    nb::ndarray<nb::ro, nb::device::cpu> array;
    const T* data = nullptr;
    std::int64_t shape[2] = {0, 1};
    std::int64_t size = 0;
};

template <typename T>
const char* numpy_name()
{
    if (std::is_same<T, float>::value) return "float32";
    if (std::is_same<T, double>::value) return "float64";
    return "int64";
}

template <typename T>
Contiguous<T> contiguous(nb::handle object, int ndim, const char* function, const char* name)
{
    nb::object converted;
    try {
        converted = nb::module_::import_("numpy").attr("ascontiguousarray")(object, nb::arg("dtype") = numpy_name<T>());
    } catch (nb::python_error& error) {
        type_error(function, std::string(name) + ": " + error.what());
    }
    Contiguous<T> c;
    if (!nb::try_cast(converted, c.array) || !is<T>(c.array.dtype())) {
        type_error(function, std::string(name) + " is no array of " + numpy_name<T>());
    }
    if (static_cast<int>(c.array.ndim()) != ndim) {
        value_error(function, std::string(name) + " must have " + std::to_string(ndim) + " dimensions, not " +
                                  std::to_string(c.array.ndim()));
    }
    c.data = static_cast<const T*>(c.array.data());
    c.size = 1;
    for (int i = 0; i < ndim; ++i) {
        c.shape[i] = static_cast<std::int64_t>(c.array.shape(i));
        c.size *= c.shape[i];
    }
    return c;
}

// Every index in [0, n): a table's rows must stay inside what they index.
inline void check_indices(const Contiguous<std::int64_t>& index, std::int64_t n, const char* function,
                          const char* name)
{
    for (std::int64_t k = 0; k < index.size; ++k) {
        if (index.data[k] < 0 || index.data[k] >= n) {
            value_error(function, std::string(name) + " holds index " + std::to_string(index.data[k]) +
                                      " outside [0, " + std::to_string(n) + ")");
        }
    }
}

// A float64 per-thread scratch (threads, rows, pitch), C-contiguous.
struct Scratch {
    double* data;
    std::int64_t threads, rows, pitch;
};

inline Scratch scratch(const OutArray& lines, const char* function)
{
    const View v = view(lines, 3, function, "lines");
    if (!is<double>(v.dtype) || !c_contiguous(v)) {
        type_error(function, "lines must be a C-contiguous float64 array");
    }
    require(v.shape[0] >= 1, function, "lines must hold scratch for at least one thread");
    return Scratch{reinterpret_cast<double*>(v.data), v.shape[0], v.shape[1], v.shape[2]};
}

}  // namespace gr

#endif  // GPURESAMPLE_ARRAYS_HPP
