"""`scribe serve --http`: one local HTTP server speaking the OpenAI, Ollama and llama.cpp APIs."""
