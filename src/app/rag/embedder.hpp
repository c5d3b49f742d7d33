// Turning texts into vectors. The engine sees this interface only: the gateway's embedder
// (gateway_embedder.hpp) in the server and the CLI, a deterministic one in the unit tests.
#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace agente::rag {

// Why texts could not be embedded, in words for last_error and the log.
class EmbeddingError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Embedder {
public:
    virtual ~Embedder() = default;
    // The name vectors are stored and cached under: [rag] embedding_model.
    virtual const std::string& model() const = 0;
    // One vector per text, in order, each scaled to unit length (so cosine similarity is a dot
    // product). Blocks; batches as it needs. `cancelled` is asked between batches: true stops with an
    // EmbeddingError.
    virtual std::vector<std::vector<float>> embed(const std::vector<std::string>& texts,
                                                  const std::function<bool()>& cancelled = {}) = 0;
};

// Scales v to unit length (a zero vector stays zero).
void normalize(std::vector<float>& v);

}  // namespace agente::rag
