"""longvid: long-video understanding with multimodal LLMs."""
