// Which process is ingesting a file. An attachment being ingested is marked with its owner; when the
// owner is gone (killed, crashed, or an operator's CLI interrupted), another process resumes the file.
// A process is named by its pid and its start time (/proc/PID/stat field 22): a pid reused by a new
// process does not pass for the old owner.
#pragma once

#include <string>

namespace agente::rag {

// This process's name as an owner: "PID:STARTTIME".
std::string this_process_owner();

// Whether the process an owner string names still runs. An empty or malformed owner is not alive.
bool owner_alive(const std::string& owner);

}  // namespace agente::rag
