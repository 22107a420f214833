"""Look Back Q&A: cited answers about the film, with spoilers kept for those who ask."""
