#include "core/rng.h"

#include <stddef.h>

/* Philox4x32 with 10 rounds (Salmon et al., SC'11). */
static inline void philox_round(uint32_t c[4], const uint32_t k[2]) {
    const uint64_t p0 = (uint64_t)0xD2511F53u * c[0];
    const uint64_t p1 = (uint64_t)0xCD9E8D57u * c[2];
    const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k[0];
    uint32_t n2 = hi0 ^ c[3] ^ k[1];
    c[0] = n0; c[1] = lo1; c[2] = n2; c[3] = lo0;
}

void qsnn_philox(uint64_t seed, uint64_t stream, uint64_t counter, uint32_t out[4]) {
    uint32_t c[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t k[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    for (int i = 0; i < 10; i++) {
        philox_round(c, k);
        k[0] += 0x9E3779B9u;
        k[1] += 0xBB67AE85u;
    }
    out[0] = c[0]; out[1] = c[1]; out[2] = c[2]; out[3] = c[3];
}

#define PHILOX_LANES 64

void qsnn_philox_n(uint64_t seed, uint64_t stream, uint64_t counter, int n, uint32_t *out) {
    uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES], c3[PHILOX_LANES];
    for (int base = 0; base < n; base += PHILOX_LANES) {
        const int m = n - base < PHILOX_LANES ? n - base : PHILOX_LANES;
        for (int i = 0; i < m; i++) {
            const uint64_t ctr = counter + (uint64_t)(base + i);
            c0[i] = (uint32_t)ctr, c1[i] = (uint32_t)(ctr >> 32);
            c2[i] = (uint32_t)stream, c3[i] = (uint32_t)(stream >> 32);
        }
        uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
        for (int round = 0; round < 10; round++) {
            for (int i = 0; i < m; i++) { /* one Philox round per lane, as philox_round */
                const uint64_t p0 = (uint64_t)0xD2511F53u * c0[i];
                const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2[i];
                const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[i] ^ k0;
                const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[i] ^ k1;
                c1[i] = (uint32_t)p1;
                c3[i] = (uint32_t)p0;
                c0[i] = n0;
                c2[i] = n2;
            }
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        for (int i = 0; i < m; i++) {
            uint32_t *o = out + 4 * (size_t)(base + i);
            o[0] = c0[i], o[1] = c1[i], o[2] = c2[i], o[3] = c3[i];
        }
    }
}

void qsnn_rng_init(qsnn_rng *r, uint64_t seed, uint64_t stream) {
    r->seed = seed;
    r->stream = stream;
    r->counter = 0;
    r->left = 0;
}

uint32_t qsnn_rng_u32(qsnn_rng *r) {
    if (r->left == 0) {
        qsnn_philox(r->seed, r->stream, r->counter++, r->buf);
        r->left = 4;
    }
    return r->buf[--r->left];
}

float qsnn_rng_uniform(qsnn_rng *r) { return qsnn_u32_to_unit(qsnn_rng_u32(r)); }

uint32_t qsnn_rng_below(qsnn_rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection: no modulo bias. */
    uint64_t m = (uint64_t)qsnn_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t t = (uint32_t)(-n) % n;
        while (low < t) {
            m = (uint64_t)qsnn_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
