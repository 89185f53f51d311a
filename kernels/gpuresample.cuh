// gpuresample: definitions shared by every kernel in kernels/*.cu.
//
// Compiled three ways, from the same text:
//   * at run time by CuPy (NVRTC) in gpuresample/backends/kernels.py,
//   * to PTX by nvcc in tests/test_kernels_nvcc.py (sm_80, sm_90, warnings are errors),
//   * as plain C++ by g++ in tests/harness/, with tests/harness/cuda_shim.h standing in for
//     the launch built-ins, and compared with the CPU backend;
// and its inline functions are the CPU loops' arithmetic too (gpuresample/_native/*.cpp),
// with gr_host.cuh defining the CUDA qualifiers away on the host.
// So: no standard headers (NVRTC has none), no shared memory, no warp-synchronous code.
//
// Arithmetic contract (the same as gpuresample/backends/_cpu_loops.py, bit for bit):
// products w * x and sums in the working type `Work` (float for float16/float32 input,
// double otherwise), taps added left to right, the separable passes applied in the pass
// order the host gives, no fused multiply-add and no flushing of subnormals (gr_mul,
// gr_add below; also compile with --fmad=false), integer outputs rounded half to even
// (rint) and then clipped to the output type's range in double.

#ifndef GPURESAMPLE_CUH
#define GPURESAMPLE_CUH

#include "gr_host.cuh"

// Element offsets: volumes beyond 2**31 voxels are routine (2560**3 is 1.7e10).
typedef long long gr_offset;

// IEEE binary16, stored as its bit pattern; distinct from unsigned short (uint16 data).
struct gr_half {
    unsigned short bits;
};

// Largest number of taps one axis of a separable table has (cubic B-spline).
#define GR_MAX_TAPS 4
// Kept coefficient rows always cover the data rows, so at most the edge pad
// (tables.CUBIC_PAD) of trailing extended-line rows lies outside them.
#define GR_MAX_UNKEPT_TAIL 12

// ---------------------------------------------------------------------------------------
// float16 <-> float32, round to nearest even (what NumPy's astype does).
// ---------------------------------------------------------------------------------------

__device__ __forceinline__ float gr_half_to_float(gr_half h)
{
    const unsigned int sign = (static_cast<unsigned int>(h.bits) & 0x8000u) << 16;
    int exponent = (h.bits >> 10) & 0x1f;
    unsigned int mantissa = h.bits & 0x3ffu;
    unsigned int bits;
    if (exponent == 0x1f) {  // inf or NaN: keep the payload
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {  // normal: rebias 15 -> 127
        bits = sign | (static_cast<unsigned int>(exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {  // signed zero
        bits = sign;
    } else {  // subnormal: normalise
        exponent = 1;
        while ((mantissa & 0x400u) == 0) {
            mantissa <<= 1;
            exponent -= 1;
        }
        bits = sign | (static_cast<unsigned int>(exponent + 112) << 23) | ((mantissa & 0x3ffu) << 13);
    }
    return __uint_as_float(bits);
}

// Round the integer `value` right-shifted by `shift` bits to nearest, ties to even.
__device__ __forceinline__ unsigned int gr_shift_round_even(unsigned int value, int shift)
{
    const unsigned int kept = value >> shift;
    const unsigned int rest = value & ((1u << shift) - 1u);
    const unsigned int half = 1u << (shift - 1);
    return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}

__device__ __forceinline__ gr_half gr_float_to_half(float value)
{
    const unsigned int bits = __float_as_uint(value);
    const unsigned int sign = (bits >> 16) & 0x8000u;
    const unsigned int magnitude = bits & 0x7fffffffu;
    gr_half h;
    if (magnitude > 0x7f800000u) {  // NaN: quiet, keep the top payload bits
        h.bits = static_cast<unsigned short>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    } else if (magnitude >= 0x477ff000u) {  // >= 65520 rounds to infinity (and inf stays inf)
        h.bits = static_cast<unsigned short>(sign | 0x7c00u);
    } else if (magnitude >= 0x38800000u) {  // half normal range: rebias 127 -> 15, 23 -> 10 bits
        h.bits = static_cast<unsigned short>(sign | gr_shift_round_even(magnitude - 0x38000000u, 13));
    } else {
        const int biased = static_cast<int>(magnitude >> 23);
        const int shift = 126 - biased;  // value / 2**-24 = (1.m * 2**23) >> shift
        unsigned int rounded = 0;
        if (shift <= 24) {
            rounded = gr_shift_round_even((magnitude & 0x7fffffu) | 0x800000u, shift);
        }
        h.bits = static_cast<unsigned short>(sign | rounded);
    }
    return h;
}

// ---------------------------------------------------------------------------------------
// IEEE arithmetic whatever the compiler flags. CuPy appends -ftz=true to the options it is
// given (NVRTC honours the last), which would flush float32 subnormals to zero. PTX
// instructions written without .ftz keep them, and an instruction with an explicit rounding
// mode is never fused into a multiply-add. On the host (the harness) plain operators, built
// with -ffp-contract=off, are the same IEEE operations.
// ---------------------------------------------------------------------------------------

#if defined(__CUDA_ARCH__)
__device__ __forceinline__ float gr_mul(float a, float b)
{
    float r;
    asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ float gr_add(float a, float b)
{
    float r;
    asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}
__device__ __forceinline__ double gr_mul(double a, double b)
{
    double r;
    asm("mul.rn.f64 %0, %1, %2;" : "=d"(r) : "d"(a), "d"(b));
    return r;
}
__device__ __forceinline__ double gr_add(double a, double b)
{
    double r;
    asm("add.rn.f64 %0, %1, %2;" : "=d"(r) : "d"(a), "d"(b));
    return r;
}
__device__ __forceinline__ double gr_widen(float a)
{
    double r;
    asm("cvt.f64.f32 %0, %1;" : "=d"(r) : "f"(a));
    return r;
}
__device__ __forceinline__ float gr_narrow(double a)
{
    float r;
    asm("cvt.rn.f32.f64 %0, %1;" : "=f"(r) : "d"(a));
    return r;
}
__device__ __forceinline__ bool gr_equal(float a, float b)
{
    unsigned int r;
    asm("{\n\t.reg .pred p;\n\tsetp.eq.f32 p, %1, %2;\n\tselp.u32 %0, 1, 0, p;\n\t}" : "=r"(r) : "f"(a), "f"(b));
    return r != 0;
}
__device__ __forceinline__ bool gr_less(float a, float b)
{
    unsigned int r;
    asm("{\n\t.reg .pred p;\n\tsetp.lt.f32 p, %1, %2;\n\tselp.u32 %0, 1, 0, p;\n\t}" : "=r"(r) : "f"(a), "f"(b));
    return r != 0;
}
#else
__device__ __forceinline__ float gr_mul(float a, float b) { return a * b; }
__device__ __forceinline__ float gr_add(float a, float b) { return a + b; }
__device__ __forceinline__ double gr_mul(double a, double b) { return a * b; }
__device__ __forceinline__ double gr_add(double a, double b) { return a + b; }
__device__ __forceinline__ double gr_widen(float a) { return static_cast<double>(a); }
__device__ __forceinline__ float gr_narrow(double a) { return static_cast<float>(a); }
__device__ __forceinline__ bool gr_equal(float a, float b) { return a == b; }
__device__ __forceinline__ bool gr_less(float a, float b) { return a < b; }
#endif

// Label comparisons: float32 through the IEEE helpers above, every other type as is.
template <typename T>
__device__ __forceinline__ bool gr_equal(T a, T b) { return a == b; }
template <typename T>
__device__ __forceinline__ bool gr_less(T a, T b) { return a < b; }

// Labels compare as values: NaN labels are one label whatever their payload, and come after
// every number, so a tie between NaN and a number goes to the number; -0.0 and 0.0 are one
// label (docs/design.md §9). float16 labels too (gr_half, below).
template <typename T>
__device__ __forceinline__ bool gr_label_equal(T a, T b) { return gr_equal(a, b); }
template <typename T>
__device__ __forceinline__ bool gr_label_less(T a, T b) { return gr_less(a, b); }
template <>
__device__ __forceinline__ bool gr_label_equal(float a, float b)
{
    return gr_equal(a, b) || (!gr_equal(a, a) && !gr_equal(b, b));
}
template <>
__device__ __forceinline__ bool gr_label_less(float a, float b)
{
    return gr_less(a, b) || (gr_equal(a, a) && !gr_equal(b, b));
}
template <>
__device__ __forceinline__ bool gr_label_equal(double a, double b) { return a == b || (a != a && b != b); }
template <>
__device__ __forceinline__ bool gr_label_less(double a, double b) { return a < b || (a == a && b != b); }

// float16 labels by value, exactly as float32 compares them (the widening is exact), with
// integers: a NaN's exponent is all ones and its mantissa not zero; any other value's key
// below grows with the value, and -0.0 and 0.0 share one.
__device__ __forceinline__ bool gr_half_is_nan(gr_half h) { return (h.bits & 0x7fffu) > 0x7c00u; }
__device__ __forceinline__ unsigned int gr_half_key(gr_half h)
{
    const unsigned int magnitude = h.bits & 0x7fffu;
    return (h.bits & 0x8000u) ? 0x8000u - magnitude : 0x8000u + magnitude;
}
template <>
__device__ __forceinline__ bool gr_label_equal(gr_half a, gr_half b)
{
    return gr_half_is_nan(a) ? gr_half_is_nan(b) : (!gr_half_is_nan(b) && gr_half_key(a) == gr_half_key(b));
}
template <>
__device__ __forceinline__ bool gr_label_less(gr_half a, gr_half b)
{
    return !gr_half_is_nan(a) && (gr_half_is_nan(b) || gr_half_key(a) < gr_half_key(b));
}

// A label as stored (the read-only path; __ldg has no overload for gr_half: its bits).
template <typename T>
__device__ __forceinline__ T gr_load_label(const T* p) { return __ldg(p); }
__device__ __forceinline__ gr_half gr_load_label(const gr_half* p)
{
    gr_half h;
    h.bits = __ldg(&p->bits);
    return h;
}

// Value conversion; float <-> double through the IEEE helpers.
template <typename To, typename From>
struct gr_cast {
    __device__ __forceinline__ static To apply(From x) { return static_cast<To>(x); }
};
template <>
struct gr_cast<double, float> {
    __device__ __forceinline__ static double apply(float x) { return gr_widen(x); }
};
template <>
struct gr_cast<float, double> {
    __device__ __forceinline__ static float apply(double x) { return gr_narrow(x); }
};

// ---------------------------------------------------------------------------------------
// One tap of a weighted sum (docs/design.md section 2). A tap whose weight is zero does not
// contribute at all: no 0 * inf = NaN, and an identity resample returns its input bit for
// bit (-0 and inf included). The weight is the same for a whole row on the CPU and for a
// whole output column on the GPU, so the test costs a uniform branch, not a voxel's work.
// ---------------------------------------------------------------------------------------

// The sum of the first tap: w * x (0 where w is 0; a table's first tap never has weight 0).
template <typename Work>
__device__ __forceinline__ Work gr_tap_first(Work w, Work x)
{
    return gr_equal(w, Work(0)) ? Work(0) : gr_mul(w, x);
}

// The sum so far plus the next tap: acc + w * x, or acc where w is 0.
template <typename Work>
__device__ __forceinline__ Work gr_tap_next(Work acc, Work w, Work x)
{
    return gr_equal(w, Work(0)) ? acc : gr_add(acc, gr_mul(w, x));
}

// ---------------------------------------------------------------------------------------
// Loading an element into the working type, storing a result into the output type.
// ---------------------------------------------------------------------------------------

template <typename Work, typename In>
__device__ __forceinline__ Work gr_load(const In* p)
{
    return gr_cast<Work, In>::apply(__ldg(p));
}

template <typename Work>
__device__ __forceinline__ Work gr_load(const gr_half* p)
{
    gr_half h;
    h.bits = __ldg(&p->bits);
    return gr_cast<Work, float>::apply(gr_half_to_float(h));
}

template <typename Work>
__device__ __forceinline__ Work gr_load(const bool* p)
{
    return static_cast<Work>(__ldg(reinterpret_cast<const unsigned char*>(p)) != 0 ? 1 : 0);
}

// Range of an integer output type in float64, as integer_limits in gpuresample/backends/base.py.
template <typename Out> struct gr_limits;
template <> struct gr_limits<bool> { static constexpr double lo = 0.0, hi = 1.0; };
template <> struct gr_limits<unsigned char> { static constexpr double lo = 0.0, hi = 255.0; };
template <> struct gr_limits<signed char> { static constexpr double lo = -128.0, hi = 127.0; };
template <> struct gr_limits<unsigned short> { static constexpr double lo = 0.0, hi = 65535.0; };
template <> struct gr_limits<short> { static constexpr double lo = -32768.0, hi = 32767.0; };
template <> struct gr_limits<unsigned int> { static constexpr double lo = 0.0, hi = 4294967295.0; };
template <> struct gr_limits<int> { static constexpr double lo = -2147483648.0, hi = 2147483647.0; };
// 64-bit maxima are no doubles (they round up, out of range): the largest double below each.
template <> struct gr_limits<long long> {
    static constexpr double lo = -9223372036854775808.0, hi = 9223372036854774784.0;
};
template <> struct gr_limits<unsigned long long> { static constexpr double lo = 0.0, hi = 18446744073709549568.0; };

__device__ __forceinline__ float gr_rint(float x) { return rintf(x); }
__device__ __forceinline__ double gr_rint(double x) { return rint(x); }

// Integer (and bool) outputs: rint in the working type, clip in double, convert.
template <typename Out, typename Work>
struct gr_store_as {
    __device__ __forceinline__ static Out convert(Work acc)
    {
        double value = gr_cast<double, Work>::apply(gr_rint(acc));
        if (value < gr_limits<Out>::lo) {
            value = gr_limits<Out>::lo;
        } else if (value > gr_limits<Out>::hi) {
            value = gr_limits<Out>::hi;
        }
        return static_cast<Out>(value);
    }
};

template <typename Work>
struct gr_store_as<float, Work> {
    __device__ __forceinline__ static float convert(Work acc) { return gr_cast<float, Work>::apply(acc); }
};

template <typename Work>
struct gr_store_as<double, Work> {
    __device__ __forceinline__ static double convert(Work acc) { return gr_cast<double, Work>::apply(acc); }
};

// float16 results go through float32 first, as the CPU backend's float32 buffer does.
template <typename Work>
struct gr_store_as<gr_half, Work> {
    __device__ __forceinline__ static gr_half convert(Work acc)
    {
        return gr_float_to_half(gr_cast<float, Work>::apply(acc));
    }
};

template <typename Out, typename Work>
__device__ __forceinline__ void gr_store(Out* p, Work acc)
{
    *p = gr_store_as<Out, Work>::convert(acc);
}

// ---------------------------------------------------------------------------------------
// Launch geometry shared by the per-voxel kernels: x over output axis 2 (contiguous, so
// writes coalesce), y over axis 1 and z over axis 0, with grid-stride loops in y and z
// because gridDim.y and gridDim.z stop at 65535. Only where the launch built-ins exist (a
// CUDA compiler, or the harness's stand-ins); the CPU loops have their own loop order.
// ---------------------------------------------------------------------------------------

#if defined(__CUDACC__) || defined(__CUDACC_RTC__) || defined(GPURESAMPLE_CUDA_SHIM_H)
__device__ __forceinline__ gr_offset gr_first_x() { return static_cast<gr_offset>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ gr_offset gr_first_y() { return static_cast<gr_offset>(blockIdx.y) * blockDim.y + threadIdx.y; }
__device__ __forceinline__ gr_offset gr_step_y() { return static_cast<gr_offset>(gridDim.y) * blockDim.y; }
__device__ __forceinline__ gr_offset gr_first_z() { return static_cast<gr_offset>(blockIdx.z) * blockDim.z + threadIdx.z; }
__device__ __forceinline__ gr_offset gr_step_z() { return static_cast<gr_offset>(gridDim.z) * blockDim.z; }

// The output index along original axis `axis` (0, 1 or 2) of voxel (j0, j1, j2).
__device__ __forceinline__ gr_offset gr_pick(int axis, gr_offset j0, gr_offset j1, gr_offset j2)
{
    return axis == 0 ? j0 : (axis == 1 ? j1 : j2);
}

#endif  // launch built-ins

#endif  // GPURESAMPLE_CUH
