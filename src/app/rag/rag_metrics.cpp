#include "app/rag/rag_metrics.hpp"

namespace agente::rag {

namespace {

constexpr const char* ingest_outcome_names[ingest_outcomes] = {"completed", "failed", "cancelled"};

int outcome_index(const std::string& status) {
    for (int i = 0; i < ingest_outcomes; ++i)
        if (status == ingest_outcome_names[i]) return i;
    return -1;
}

}  // namespace

Shared<RagCounters> declare_rag_counters(SharedLayout& layout) { return layout.declare<RagCounters>("rag.counters"); }

// The ingest is counted last, and released: a scrape reads it first (write_rag_metrics), so the
// chunks it then reads include those of every ingest it counted.
void count_ingest(RagCounters& c, const IngestOutcome& o) {
    int i = outcome_index(o.status);
    if (i < 0) return;   // handed back (the worker is stopping): another process finishes it
    if (o.status == "completed") {
        c.chunks.fetch_add(std::uint64_t(o.chunks), std::memory_order_relaxed);
        c.embedded.fetch_add(std::uint64_t(o.embedded), std::memory_order_relaxed);
        c.reused.fetch_add(std::uint64_t(o.reused), std::memory_order_relaxed);
    }
    c.ingests[i].fetch_add(1, std::memory_order_release);
}

void count_search(RagCounters& c, std::chrono::microseconds took, bool ok) {
    c.searches[ok ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
    c.search_buckets[latency_bucket(took)].fetch_add(1, std::memory_order_relaxed);
    c.search_sum_us.fetch_add(std::uint64_t(took.count()), std::memory_order_relaxed);
}

void write_rag_metrics(MetricsText& out, const RagCounters& c) {
    out.family("agente_rag_ingests_total", "counter", "Files the RAG engine finished ingesting, by outcome.");
    for (int i = 0; i < ingest_outcomes; ++i)
        out.sample("agente_rag_ingests_total", {{"outcome", ingest_outcome_names[i]}}, c.ingests[i].load());
    out.family("agente_rag_chunks_total", "counter", "Chunks indexed by completed ingests.");
    out.sample("agente_rag_chunks_total", {}, c.chunks.load());
    out.family("agente_rag_embeddings_total", "counter",
               "Chunks of completed ingests by where their vector came from: the embedding model, or the cache.");
    out.sample("agente_rag_embeddings_total", {{"source", "model"}}, c.embedded.load());
    out.sample("agente_rag_embeddings_total", {{"source", "cache"}}, c.reused.load());
    out.family("agente_rag_searches_total", "counter", "Searches of vector stores (the API's and grounded answers'), by outcome.");
    out.sample("agente_rag_searches_total", {{"outcome", "ok"}}, c.searches[0].load());
    out.sample("agente_rag_searches_total", {{"outcome", "failed"}}, c.searches[1].load());
    out.family("agente_rag_search_duration_seconds", "histogram", "A search job in a dirty worker, from its start to its answer.");
    std::uint64_t buckets[latency_buckets];
    for (std::size_t b = 0; b < latency_buckets; ++b) buckets[b] = c.search_buckets[b].load();
    out.histogram("agente_rag_search_duration_seconds", {}, latency_bounds_s, buckets, double(c.search_sum_us.load()) / 1e6);
}

}  // namespace agente::rag
