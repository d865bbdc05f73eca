// The C++ shim: registers every case of bench/cases.c with Google Benchmark and times pab_run. Nothing else lives
// here; the bodies are C. The multi-core family is timed in wall-clock time (it runs its own threads); the others in
// the calling thread's CPU time (see bench.h).
#include <benchmark/benchmark.h>

#include <cstdint>

#include "bench.h"

namespace {

// The families: cases.c's, then those kept in their own files (bench.h's pab_family_ops).
const pab_family_ops core_family = {pab_case_count, pab_case_at, pab_prepare, pab_run, pab_finish, pab_release_all};
const pab_family_ops *const families[] = {&core_family, &pab_rope_family, &pab_liere_family,
                                             &pab_alibi_nd_family, &pab_attention_family};

void run_case(benchmark::State &state, const pab_family_ops *ops, const pab_case *c) {
    void *ctx = nullptr;
    if (const char *why = ops->prepare(c, &ctx)) {
        state.SkipWithError(why);
        return;
    }
    for (auto _ : state) {
        ops->run(ctx);
        benchmark::ClobberMemory();
    }
    ops->finish(ctx);
    state.SetItemsProcessed(static_cast<int64_t>(static_cast<double>(state.iterations()) * c->elements));
    state.SetBytesProcessed(static_cast<int64_t>(static_cast<double>(state.iterations()) * c->bytes));
    state.counters["elems"] = c->elements;
    state.counters["threads_used"] = c->threads;
    if (c->read_fraction > 0) state.counters["kv_read_fraction"] = c->read_fraction;
}

}  // namespace

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    char value[512];
    const char *key = nullptr;
    for (size_t i = 0; pab_context(i, &key, value, sizeof value); ++i) benchmark::AddCustomContext(key, value);
    for (const pab_family_ops *ops : families) {
        for (size_t i = 0; i < ops->count(); ++i) {
            const pab_case *c = ops->at(i);
            benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(c->name, run_case, ops, c);
            b->Unit(benchmark::kMicrosecond);
            if (c->wall_clock) b->UseRealTime();
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    for (const pab_family_ops *ops : families) ops->release_all();
    return 0;
}
