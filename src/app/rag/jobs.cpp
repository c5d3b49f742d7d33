#include "app/rag/jobs.hpp"

#include "app/rag/api.hpp"
#include "app/rag/gateway_embedder.hpp"
#include "app/rag/wire.hpp"

#include <spdlog/spdlog.h>

#include <memory>

namespace agente::rag {

namespace {

// What one dirty worker holds for its life. The engine goes first (its ingest thread may be waiting
// on an embedding), then the loop that embeds.
struct Service {
    std::unique_ptr<EmbeddingLoop> loop;
    std::unique_ptr<Engine> engine;

    ~Service() {
        engine.reset();
        loop.reset();
    }
};

}  // namespace

void register_rag_jobs(JobRegistry& jobs, const Config& config) {
    if (!rag_configured(*config.app)) return;
    RagSettings settings = load_rag_settings(*config.app, config.app_source);
    auto service = std::make_shared<Service>();
    std::shared_ptr<Embedder> embedder;
    if (!settings.embedding_model.empty()) {
        service->loop = std::make_unique<EmbeddingLoop>(config);
        embedder = service->loop->embedder(settings.embedding_model, settings.embedding_batch_size);
    }
    service->engine = std::make_unique<Engine>(settings, embedder);
    service->engine->start_background_ingest();   // resumes what a dead process left in progress
    spdlog::info("rag: store {} ({})", service->engine->database_path(),
                 settings.embedding_model.empty() ? std::string("keyword search only")
                                                  : "embeddings by " + settings.embedding_model);

    auto handler = [service](JobContext& job) { return run_api(*service->engine, job.payload()); };
    JobOptions idempotent;   // reads and search change nothing: a call whose worker died is retried
    idempotent.idempotent = true;
    jobs.add(wire::read_kind, handler, idempotent);
    jobs.add(wire::search_kind, handler, idempotent);
    jobs.add(wire::files_kind, handler);
    jobs.add(wire::stores_kind, handler);
    jobs.add(wire::store_files_kind, handler);
    jobs.add(wire::batches_kind, handler);
}

}  // namespace agente::rag
