import Config

config :web, greeting: "hello"
config :worker, interval_ms: 1_000
