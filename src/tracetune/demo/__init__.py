"""The built-in demo: a scripted teacher writes pi sessions, then the whole pipeline runs on them."""
