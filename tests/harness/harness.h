// The harness's launch API. Kernels are looked up by the name expression the backend gives
// CuPy's RawModule and run once per thread of their launch grid, one thread at a time, with
// their arguments passed as cuLaunchKernel passes them: an array of pointers to the values.
//
// A generated translation unit includes cuda_shim.h, the kernels and this header, lists the
// instantiations it needs with GR_KERNEL(...) and ends with GR_HARNESS_API(its list).

#ifndef GPURESAMPLE_HARNESS_H
#define GPURESAMPLE_HARNESS_H

#include <cstddef>
#include <type_traits>
#include <utility>

thread_local gr_shim_dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace gr_harness {

template <typename... A, std::size_t... I>
void call_unpacked(void (*kernel)(A...), void** params, std::index_sequence<I...>)
{
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(params[I])...);
}

template <typename... A>
void call_packed(void (*kernel)(A...), void** params)
{
    call_unpacked(kernel, params, std::index_sequence_for<A...>());
}

template <auto Kernel>
void thunk(void** params)
{
    call_packed(Kernel, params);
}

// Each parameter's kind ('p' pointer, 'f' floating point, 'i' integer or bool) and size, so
// the harness can refuse arguments CuPy would pass with another layout.
template <typename T>
constexpr char kind_of()
{
    return std::is_pointer<T>::value ? 'p' : (std::is_floating_point<T>::value ? 'f' : 'i');
}

template <typename... A>
const char* kinds_of(void (*)(A...))
{
    static const char kinds[] = {kind_of<A>()..., '\0'};
    return kinds;
}

template <typename... A>
const int* sizes_of(void (*)(A...))
{
    static const int sizes[] = {static_cast<int>(sizeof(A))..., 0};
    return sizes;
}

struct Entry {
    const char* name;
    void (*call)(void**);
    const char* kinds;
    const int* sizes;
};

// Name expressions compare with all white space removed.
inline bool same_name(const char* a, const char* b)
{
    for (;;) {
        while (*a == ' ') ++a;
        while (*b == ' ') ++b;
        if (*a != *b) return false;
        if (*a == '\0') return true;
        ++a;
        ++b;
    }
}

inline void run_grid(void (*call)(void**), const unsigned* grid, const unsigned* block, void** params)
{
    gridDim = {grid[0], grid[1], grid[2]};
    blockDim = {block[0], block[1], block[2]};
    for (unsigned bz = 0; bz < grid[2]; ++bz)
        for (unsigned by = 0; by < grid[1]; ++by)
            for (unsigned bx = 0; bx < grid[0]; ++bx)
                for (unsigned tz = 0; tz < block[2]; ++tz)
                    for (unsigned ty = 0; ty < block[1]; ++ty)
                        for (unsigned tx = 0; tx < block[0]; ++tx) {
                            blockIdx = {bx, by, bz};
                            threadIdx = {tx, ty, tz};
                            call(params);
                        }
}

template <std::size_t N>
const Entry* find(const Entry (&entries)[N], const char* name)
{
    for (const Entry& entry : entries) {
        if (same_name(entry.name, name)) {
            return &entry;
        }
    }
    return nullptr;
}

template <std::size_t N>
int launch(const Entry (&entries)[N], const char* name, const unsigned* grid, const unsigned* block,
           void** params)
{
    for (const Entry& entry : entries) {
        if (same_name(entry.name, name)) {
            run_grid(entry.call, grid, block, params);
            return 0;
        }
    }
    return -1;
}

}  // namespace gr_harness

#define GR_KERNEL(...)                                                                       \
    gr_harness::Entry{#__VA_ARGS__, &gr_harness::thunk<&__VA_ARGS__>, gr_harness::kinds_of(&__VA_ARGS__), \
                      gr_harness::sizes_of(&__VA_ARGS__)}

// C entry points for ctypes: launch a kernel by name; list the kernels compiled in; a
// kernel's parameter kinds and sizes.
#define GR_HARNESS_API(entries)                                                                 \
    extern "C" int gr_harness_launch(const char* name, const unsigned* grid, const unsigned* block, \
                                     void** params)                                            \
    {                                                                                           \
        return gr_harness::launch(entries, name, grid, block, params);                          \
    }                                                                                           \
    extern "C" int gr_harness_kernel_count() { return static_cast<int>(sizeof entries / sizeof entries[0]); } \
    extern "C" const char* gr_harness_kernel_name(int i) { return entries[i].name; }                  \
    extern "C" const char* gr_harness_kernel_kinds(const char* name)                                 \
    {                                                                                           \
        const gr_harness::Entry* entry = gr_harness::find(entries, name);                       \
        return entry ? entry->kinds : nullptr;                                                  \
    }                                                                                           \
    extern "C" const int* gr_harness_kernel_sizes(const char* name)                              \
    {                                                                                           \
        const gr_harness::Entry* entry = gr_harness::find(entries, name);                       \
        return entry ? entry->sizes : nullptr;                                                  \
    }

#endif  // GPURESAMPLE_HARNESS_H
