defmodule Umbrella.MixProject do
  use Mix.Project

  # Two releases from one umbrella: `web_only` (the HTTP app) and `worker_only` (a background
  # worker). `mix release` needs a name here (there is no :default_release).
  def project do
    [
      apps_path: "apps",
      version: "0.1.0",
      start_permanent: Mix.env() == :prod,
      deps: [],
      releases: [
        web_only: [
          applications: [web: :permanent],
          include_executables_for: [:unix],
          # bin/server: start the web release in "server mode" (like Phoenix's bin/server).
          overlays: ["rel/web_overlays"]
        ],
        worker_only: [
          applications: [worker: :permanent],
          include_executables_for: [:unix]
        ]
      ]
    ]
  end
end
