// gpuresample._core: the oblique trilinear loops (affine.hpp), float32 sources eight voxels at
// a time with AVX2 where the CPU has it.
#include "affine.hpp"

namespace gr {
namespace affine {
namespace {

#ifdef GR_AFFINE_AVX2
// Linear along one axis: gr_linear_taps_inner and gr_linear_weights<float> of eight
// positions. a: offsets of row a; b: of row b (a + 1, or a where the fraction is 0);
// w0, w1: the weights of a and b.
struct Linear8 {
    __m256i a, b;
    __m256 w0, w1;
};

GR_AVX2_INLINE Linear8 linear_axis8(const Block& blk, int i, double p, gr_offset j2)
{
    const Lanes8 u = coordinate8(blk, i, p, j2);
    const __m128i a_lo = _mm256_cvttpd_epi32(u.lo), a_hi = _mm256_cvttpd_epi32(u.hi);
    const __m256d frac_lo = _mm256_sub_pd(u.lo, _mm256_cvtepi32_pd(a_lo));
    const __m256d frac_hi = _mm256_sub_pd(u.hi, _mm256_cvtepi32_pd(a_hi));
    const __m256d zero = _mm256_setzero_pd(), one = _mm256_set1_pd(1.0);
    // frac != 0 per lane, 64-bit masks narrowed to 32 bits
    const __m256i low_halves = _mm256_set_epi32(6, 4, 2, 0, 6, 4, 2, 0);
    const __m256i moved_lo = _mm256_permutevar8x32_epi32(_mm256_castpd_si256(_mm256_cmp_pd(frac_lo, zero, _CMP_NEQ_UQ)), low_halves);
    const __m256i moved_hi = _mm256_permutevar8x32_epi32(_mm256_castpd_si256(_mm256_cmp_pd(frac_hi, zero, _CMP_NEQ_UQ)), low_halves);
    const __m256i moved = _mm256_set_m128i(_mm256_castsi256_si128(moved_hi), _mm256_castsi256_si128(moved_lo));
    Linear8 t;
    t.a = offsets8(blk, i, _mm256_set_m128i(a_hi, a_lo));
    t.b = _mm256_add_epi32(t.a, _mm256_and_si256(moved, _mm256_set1_epi32(static_cast<std::int32_t>(blk.source.stride[i]))));
    t.w0 = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_sub_pd(one, frac_hi)), _mm256_cvtpd_ps(_mm256_sub_pd(one, frac_lo)));
    t.w1 = _mm256_set_m128(_mm256_cvtpd_ps(frac_hi), _mm256_cvtpd_ps(frac_lo));
    return t;
}

// gr_tap_first and gr_tap_next, eight lanes.
GR_AVX2_INLINE __m256 tap_first8(__m256 w, __m256 x)
{
    const __m256 zero = _mm256_setzero_ps();
    return _mm256_blendv_ps(_mm256_mul_ps(w, x), zero, _mm256_cmp_ps(w, zero, _CMP_EQ_OQ));
}

GR_AVX2_INLINE __m256 tap_next8(__m256 acc, __m256 w, __m256 x)
{
    const __m256 zero = _mm256_setzero_ps();
    return _mm256_blendv_ps(_mm256_add_ps(acc, _mm256_mul_ps(w, x)), acc, _mm256_cmp_ps(w, zero, _CMP_EQ_OQ));
}

GR_AVX2_INLINE bool all_zero8(__m256 w)
{
    return _mm256_movemask_ps(_mm256_cmp_ps(w, _mm256_setzero_ps(), _CMP_EQ_OQ)) == 0xff;
}

// The float pairs (x[o], x[o + 1]) at eight offsets o: first elements in `first`, second in
// `second`, lane k from offset k.
GR_AVX2_INLINE void pairs8(const float* s, __m256i offsets, __m256& first, __m256& second)
{
    alignas(32) std::int32_t o[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(o), offsets);
    const auto two = [&](int k) {
        return _mm_loadh_pi(_mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(s + o[k])),
                            reinterpret_cast<const __m64*>(s + o[k + 1]));
    };
    const __m256 q0 = _mm256_set_m128(two(2), two(0));  // pairs 0 1 | 2 3
    const __m256 q1 = _mm256_set_m128(two(6), two(4));  // pairs 4 5 | 6 7
    const __m256 even = _mm256_shuffle_ps(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));  // 0 1 4 5 | 2 3 6 7
    const __m256 odd = _mm256_shuffle_ps(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
    first = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8));
    second = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(odd), 0xD8));
}

// Whether linear_float8 may run on this block: AVX2, 32-bit offsets, float32 rows of
// contiguous elements along axis 2 that hold the whole axis (an inner position's row a + 1
// is then always in the block, so a pair load there stays inside).
bool linear_float8_fits(const Block& b)
{
    return have_avx2() && b.offsets_32 && b.source.stride[2] == 1 && b.source.first[2] == 0 &&
           b.rows[2] == b.source.n[2];
}

// Trilinear of the inner voxels [from, to) of a line, eight at a time (the scalar body takes
// the last to - from mod 8): stored at line[j2] where the line is given (contiguous float32:
// the output or a line buffer), else handed to put(j2, the eight results).
template <typename Put>
GR_AVX2 void linear_float8(const float* s, const Block& b, const double* p, gr_offset from, gr_offset to,
                           float* line, const Put& put)
{
    alignas(32) float results[8];
    for (gr_offset j2 = from; j2 + 8 <= to; j2 += 8) {
        prefetch_ahead(s, b, p, j2);
        const Linear8 t0 = linear_axis8(b, 0, p[0], j2);
        const Linear8 t1 = linear_axis8(b, 1, p[1], j2);
        const Linear8 t2 = linear_axis8(b, 2, p[2], j2);
        // x_abc: tap a along axis 0, b along axis 1, c along axis 2 (c read as a pair: row
        // a + 1 where b's weight is 0 is read but not added). Taps of weight 0 in every lane
        // are not read (their rows are the a rows).
        const bool zero0 = all_zero8(t0.w1), zero1 = all_zero8(t1.w1);
        __m256 x000, x001, x100, x101, x010, x011, x110, x111;
        pairs8(s, _mm256_add_epi32(_mm256_add_epi32(t0.a, t1.a), t2.a), x000, x001);
        if (zero0) {
            x100 = x000;
            x101 = x001;
        } else {
            pairs8(s, _mm256_add_epi32(_mm256_add_epi32(t0.b, t1.a), t2.a), x100, x101);
        }
        if (zero1) {
            x010 = x000;
            x011 = x001;
        } else {
            pairs8(s, _mm256_add_epi32(_mm256_add_epi32(t0.a, t1.b), t2.a), x010, x011);
        }
        if (zero0) {
            x110 = x010;
            x111 = x011;
        } else if (zero1) {
            x110 = x100;
            x111 = x101;
        } else {
            pairs8(s, _mm256_add_epi32(_mm256_add_epi32(t0.b, t1.b), t2.a), x110, x111);
        }
        // gr_affine_linear_sum: along axis 0, then axis 1, then axis 2
        const __m256 x00 = tap_next8(tap_first8(t0.w0, x000), t0.w1, x100);
        const __m256 x10 = tap_next8(tap_first8(t0.w0, x010), t0.w1, x110);
        const __m256 x01 = tap_next8(tap_first8(t0.w0, x001), t0.w1, x101);
        const __m256 x11 = tap_next8(tap_first8(t0.w0, x011), t0.w1, x111);
        const __m256 y0 = tap_next8(tap_first8(t1.w0, x00), t1.w1, x10);
        const __m256 y1 = tap_next8(tap_first8(t1.w0, x01), t1.w1, x11);
        const __m256 v = tap_next8(tap_first8(t2.w0, y0), t2.w1, y1);
        if (line != nullptr) {
            _mm256_storeu_ps(line + j2, v);
        } else {
            _mm256_store_ps(results, v);
            put(j2, results);
        }
    }
}
#endif  // AVX2

// Trilinear of In into T: the working dtype Work (into the output, or Buffered into line
// buffers that finish stores into any output dtype), or the other float dtype (into the
// output, without rounding: store<false>).
template <typename In, typename T, bool Buffered>
void linear_into(const Volume& src, const Block& block, const Output& out, LineStore<T> finish, const Rounding& r,
                 std::int64_t threads)
{
    using Work = work_of<In>;
    const In* s = static_cast<const In*>(src.data());
    // Inner voxels in runs: the taps and weights of a run first, then its sums, so that the
    // loads of many voxels are in flight at once.
    const auto runs = [s, r](const Block& b, const double* p, T* line, gr_offset from, gr_offset to, const auto&) {
#ifdef GR_AFFINE_AVX2
        if constexpr (std::is_same_v<In, float>) {
            if (linear_float8_fits(b)) {
                const gr_offset o2 = b.out_s[2];
                float* contiguous = nullptr;
                if constexpr (std::is_same_v<T, float>) {
                    contiguous = o2 == 1 ? line : nullptr;
                }
                linear_float8(s, b, p, from, to, contiguous, [&](gr_offset j2, const float* values) {
                    for (int k = 0; k < 8; ++k) {
                        store<false>(line + (j2 + k) * o2, values[k], r);
                    }
                });
                from += (to - from) / 8 * 8;
            }
        }
#endif
        constexpr gr_offset run = 16;
        gr_offset rows[run][6];
        Work weights[run][6];
        for (gr_offset j2 = from; j2 < to; j2 += run) {
            const gr_offset count = std::min(run, to - j2);
            for (gr_offset k = 0; k < count; ++k) {
                double u[3];
                gr_affine_position(b.m, p, static_cast<double>(j2 + k), u);
                gr_affine_linear_taps<Work, true>(b.source, u, rows[k], weights[k]);
            }
            T* target = line + j2 * b.out_s[2];
            for (gr_offset k = 0; k < count; ++k, target += b.out_s[2]) {
                store<false>(target, gr_affine_linear_sum(s, rows[k], weights[k]), r);
            }
        }
    };
    each_voxel<T, Buffered>(
        block, out.data(), finish, r, threads,
        [s, r](T* target, const double* u, const Block& b, auto inner) {
            store<false>(target, gr_affine_linear_sample<Work, decltype(inner)::value>(s, b.source, u), r);
        },
        runs);
}

template <typename In>
void linear(const Volume& src, const Block& block, const Output& out, const Rounding& r, std::int64_t threads)
{
    using Work = work_of<In>;
    using Other = std::conditional_t<std::is_same_v<Work, float>, double, float>;
    if (!r.round && out.dtype() == nb::dtype<Other>()) {
        linear_into<In, Other, false>(src, block, out, nullptr, r, threads);
        return;
    }
    const LineStore<Work> finish = finish_of<Work>("affine_linear", out, r);
    if (finish != nullptr) {
        linear_into<In, Work, true>(src, block, out, finish, r, threads);
    } else {
        linear_into<In, Work, false>(src, block, out, nullptr, r, threads);
    }
}

}  // namespace

void linear_loops(const Volume& src, const Block& block, const Output& out, const Rounding& r, std::int64_t threads)
{
    if (!visit_dtype(src.dtype(), [&](auto in) { linear<typename decltype(in)::type>(src, block, out, r, threads); })) {
        refuse("affine_linear", "no loop reads this source dtype");
    }
}

}  // namespace affine
}  // namespace gr
