// A deterministic embedder for the engine's unit tests: each text a hashed bag of its lower-cased
// words (like tests/fake_upstream and the acceptance check's upstream), so texts that share words are
// near. Counts what it embeds; can be told to fail, or to kill its process after some batches.
#pragma once

#include "app/rag/embedder.hpp"

#include <atomic>
#include <cctype>
#include <csignal>
#include <functional>

namespace agente::rag::testing {

class FakeEmbedder final : public Embedder {
public:
    explicit FakeEmbedder(std::string model = "fake", int dims = 64) : model_(std::move(model)), dims_(dims) {}

    const std::string& model() const override { return model_; }

    std::vector<std::vector<float>> embed(const std::vector<std::string>& texts,
                                          const std::function<bool()>& cancelled) override {
        if (cancelled && cancelled()) throw EmbeddingError("cancelled");
        if (fail) throw EmbeddingError("fake upstream down");
        if (kill_after_batches >= 0 && batches >= kill_after_batches) std::raise(SIGKILL);
        ++batches;
        std::vector<std::vector<float>> out;
        for (auto& t : texts) out.push_back(vector_of(t));
        embedded += long(texts.size());
        return out;
    }

    std::vector<float> vector_of(const std::string& text) const {
        std::vector<float> v(std::size_t(dims_), 0.0f);
        std::string word;
        auto add = [&] {
            if (word.empty()) return;
            std::size_t h = std::hash<std::string>{}(word);
            v[h % std::size_t(dims_)] += (h >> 40) & 1 ? 1.0f : -1.0f;
            word.clear();
        };
        for (char c : text) {
            if (std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80)
                word.push_back(char(std::tolower(static_cast<unsigned char>(c))));
            else
                add();
        }
        add();
        normalize(v);
        return v;
    }

    std::atomic<long> embedded{0};
    std::atomic<int> batches{0};
    bool fail = false;
    int kill_after_batches = -1;

private:
    std::string model_;
    int dims_;
};

}  // namespace agente::rag::testing
