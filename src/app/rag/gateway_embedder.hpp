// Embeddings through the gateway's own attempt loop (attempts.hpp: the model's targets in order,
// retries with backoff, fallback, the shared breakers), from code that may block: a job thread of a
// dirty worker, or the CLI. Each batch is a POST /embeddings run as a coroutine on an io_context that
// another thread runs; the caller waits on its future. Never call embed() from that io_context's own
// thread: it would wait on itself.
#pragma once

#include "app/gateway/gateway.hpp"
#include "app/rag/embedder.hpp"

#include <memory>

namespace agente::rag {

std::unique_ptr<Embedder> make_gateway_embedder(asio::any_io_executor executor, std::shared_ptr<gateway::Gateway> gateway,
                                                const gateway::ModelSettings& model, int batch_size);

// An io_context on a thread of its own with a gateway on it, for a process that has no loop of its
// own to lend (the CLI, the tests, a dirty worker's job threads). The breakers are `shared`'s when
// it is given (the master's shared memory, so every process counts against the same breakers), else
// this object's own.
class EmbeddingLoop {
public:
    EmbeddingLoop(const Config& config, const gateway::SharedState* shared = nullptr, int slot = 0);
    ~EmbeddingLoop();   // stops the loop and joins its thread
    EmbeddingLoop(const EmbeddingLoop&) = delete;
    EmbeddingLoop& operator=(const EmbeddingLoop&) = delete;

    // The embedder of a [models."NAME"]; throws std::invalid_argument for an unknown model.
    std::unique_ptr<Embedder> embedder(const std::string& model, int batch_size);
    gateway::Gateway& gateway();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace agente::rag
