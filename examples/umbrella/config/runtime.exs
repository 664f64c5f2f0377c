import Config

# Read when the release boots (written to RELEASE_TMP, so it works on a read-only root).
if greeting = System.get_env("GREETING") do
  config :web, greeting: greeting
end

config :web, server_mode: System.get_env("WEB_SERVER_MODE", "start")
