#include "app/agent/answer.hpp"

namespace agente::agent {

namespace {

gateway::CompletionResult unavailable(const AgentDef& agent) {
    gateway::CompletionResult r;
    r.status = 503;
    r.error = "agent " + agent.id + " answers from vector stores, which need the [rag] table";
    return r;
}

}  // namespace

const app::Retrieval* retrieval_of(const AgentDef& agent, const gateway::ModelSettings& model) {
    if (agent.retrieval.grounded()) return &agent.retrieval;
    if (model.retrieval.grounded()) return &model.retrieval;
    return nullptr;
}

asio::awaitable<Answer> answer_turn(gateway::Gateway& gw, const AgentDef& agent, const gateway::ModelSettings& model,
                                    nlohmann::json body, const gateway::DeltaCallback* on_delta) {
    Answer out;
    const app::Retrieval* retrieval = retrieval_of(agent, model);
    if (!retrieval) {
        if (on_delta) out.completion = co_await gateway::complete_stream(gw, model, std::move(body), *on_delta);
        else out.completion = co_await gateway::complete(gw, model, std::move(body));
        co_return out;
    }
    if (!gw.grounded_complete) {
        out.completion = unavailable(agent);
        co_return out;
    }
    gateway::GroundedResult grounded = co_await gw.grounded_complete(model, *retrieval, std::move(body), on_delta);
    out.completion = std::move(grounded.completion);
    out.citations = std::move(grounded.citations);
    co_return out;
}

}  // namespace agente::agent
