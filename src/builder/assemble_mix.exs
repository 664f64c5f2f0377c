# assemble_mix.exs: the mix part of assemble.sh, in ONE Erlang VM (each `mix` or `elixir` start
# costs about half a second): `mix deps.get`, choosing the releases as `mix release` would, then
# each release. assemble.sh runs it as `elixir -r THIS_FILE -S mix release_oci.assemble`.
# No single quote may appear in this file: assemble.sh holds it in a single-quoted shell string.
#
# Environment: MIX_ENV, MIX_TARGET, OUT, RELEASE_NAME as in assemble.sh, and
#   RELEASE_CACHE  a directory kept between builds (in the build cache volume): each release is
#                  assembled in RELEASE_CACHE/NAME and lent (moved), linked or copied to its place in OUT, and the fast
#                  path below may update it instead of assembling it anew; unset: no fast path.
#
# Fast path: `mix release` copies and strips every application (ERTS, OTP, Elixir, deps) each
# time, about a second for the smallest project. When everything `mix release` reads, other than
# the compiled code of the project own applications, is what it was when RELEASE_CACHE/NAME
# was assembled (the fingerprint below), the release there is brought up to date by copying
# just the project own applications again, with `Mix.Release.copy_app/2`, the function the
# full assembly uses for them. The fingerprint covers: the release struct (every application
# with its version, path and module list, the options, boot scripts, steps, ERTS), mix.exs,
# mix.lock, the config and rel directories and overlays by content, the consolidated protocols
# by content, and every application built in the project (deps and path deps) by file names,
# sizes and mtimes. Aliases of `release` and steps other than :assemble always take the full
# path; so does any error in the fast path.
defmodule Mix.Tasks.ReleaseOci.Assemble do
  @moduledoc false
  use Mix.Task

  @fingerprint_version 1

  def run(_args) do
    status =
      try do
        assemble_all()
        0
      catch
        {:release_oci_fail, msg} ->
          IO.puts("error: " <> msg)
          1
      end

    # Done: no orderly shutdown of the applications mix started (it takes a while).
    System.halt(status)
  end

  # The whole Mix part of a build; fail/1 throws. Also run by the warm builder Mix server
  # (mix_server.exs) for each build it takes.
  @doc false
  def assemble_all do
    env = System.get_env("MIX_ENV") || "prod"
    out = System.fetch_env!("OUT")
    configure_hex()

    if deps_fetched?() do
      # The build cache has every locked dependency: no repository is needed (nor asked).
      say("dependencies: all locked ones are fetched already (build cache), not fetching")
    else
      say("mix deps.get --only #{env}")

      try do
        Mix.Task.run("deps.get", ["--only", env])
      rescue
        e -> fail("mix deps.get failed: " <> Exception.message(e) <> fetch_hint())
      end
    end

    check_deps_elixir()
    build_assets()

    which = if (System.get_env("RELEASE_NAME") || "") == "", do: "default release", else: System.get_env("RELEASE_NAME")
    say("choosing the release(s) (#{which})")
    {chosen, own} = choose(out)
    count = length(chosen)

    try do
      write_licenses(out)
    rescue
      e -> say("licences of the dependencies: not listed (#{Exception.message(e)})")
    end

    for {name, how} <- chosen do
      path = if count == 1, do: Path.join(out, "rel"), else: Path.join([out, "rel", "#{name}"])
      assemble(name, how, path, own)
      File.exists?(Path.join(path, "releases/start_erl.data")) ||
        fail("mix release made no release in #{path}")
      # A :tar step leaves the tarball in the release directory: it is no part of the release.
      Enum.each(Path.wildcard(Path.join(path, "*.tar.gz")), &File.rm!/1)
    end

    :ok
  end

  defp say(msg), do: IO.puts("==> " <> msg)

  # [[hex.repos]] of release-oci.toml (RELEASE_OCI_HEX_REPOS: lines NAME URL KEYFILE|- AUTHFILE|-),
  # configured in this VM only, as `mix hex.repo add|set` would: no key is written to HEX_HOME.
  defp configure_hex do
    spec = System.get_env("RELEASE_OCI_HEX_REPOS") || ""

    if spec != "" and Code.ensure_loaded?(Hex) do
      # apply/3: Hex is an archive, not known when this file compiles.
      apply(Hex, :start, [])

      for line <- String.split(spec, "\n", trim: true) do
        [name, url, key, auth] = String.split(line, " ")
        repo = %{url: url, trusted: true}
        repo = if key == "-", do: repo, else: Map.put(repo, :public_key, File.read!(key))

        repo =
          case auth do
            "-" ->
              repo

            file ->
              case File.read(file) do
                {:ok, value} -> Map.put(repo, :auth_key, String.trim(value))
                {:error, _} -> fail("hex repository #{name}: its auth key, the secret #{Path.basename(file)}, is missing")
              end
          end

        apply(Hex.State, :update!, [:repos, fn repos ->
          Map.update(repos, name, Map.merge(%{public_key: nil, auth_key: nil}, repo), &Map.merge(&1, repo))
        end])

        say("hex repository #{name}: #{url}")
      end
    end
  end

  # Whether every dependency of this environment is fetched and matches mix.lock.
  defp deps_fetched? do
    deps = Mix.Dep.cached()
    ok? = deps != [] and File.regular?("mix.lock") and Enum.all?(deps, &Mix.Dep.ok?/1)
    unless ok?, do: Mix.Dep.clear_cached()
    ok?
  rescue
    _ ->
      Mix.Dep.clear_cached()
      false
  end

  # What to change when fetching the dependencies failed: where Hex fetched from, and the settings.
  defp fetch_hint do
    repos =
      if Code.ensure_loaded?(Hex) and Process.whereis(Hex.State) do
        mirror = apply(Hex.State, :fetch!, [:mirror_url])

        for {name, repo} <- apply(Hex.State, :fetch!, [:repos]) do
          url = if name == "hexpm" and mirror, do: mirror, else: repo.url
          "#{name} at #{url}"
        end
      else
        []
      end

    where = if repos == [], do: "", else: " (Hex repositories: " <> Enum.join(repos, ", ") <> ")"

    where <>
      ". To fix it: a repository or its key in [[hex.repos]] of release-oci.toml, a mirror with --build-env HEX_MIRROR=URL, " <>
      "the CA of a TLS-intercepting proxy with --build-ca FILE, a private repository key with --secret and auth_secret, " <>
      "private git dependencies with --ssh default"
  end

  # Mix only warns when a dependency needs another Elixir (when it compiles it); the compile error
  # deep inside it that follows says less than this. Each Mix dependency has its own requirement in its mix.exs.
  defp check_deps_elixir do
    lock = Mix.Dep.Lock.read()

    bad =
      for {app, path} <- Mix.Project.deps_paths(),
          File.regular?(Path.join(path, "mix.exs")),
          req = dep_elixir_req(app, path),
          is_binary(req),
          not Version.match?(System.version(), req) do
        version =
          case lock[app] do
            {:hex, _, v, _, _, _, _, _} -> " " <> v
            {:hex, _, v, _, _, _, _} -> " " <> v
            _ -> ""
          end

        "#{app}#{version} requires Elixir #{req}"
      end

    if bad != [] do
      fail(
        "dependencies need another Elixir than the builder has (Elixir #{System.version()}, Erlang/OTP #{System.otp_release()}): " <>
          Enum.join(bad, "; ") <>
          ". Pin the Elixir they need in .tool-versions (or the elixir requirement in mix.exs) so a builder that has it is chosen, " <>
          "pass --builder-image, or lock versions of them that support Elixir #{System.version()}"
      )
    end
  end

  defp dep_elixir_req(app, path) do
    Mix.Project.in_project(app, path, fn _ -> Mix.Project.config()[:elixir] end)
  rescue
    _ -> nil
  end

  # Phoenix assets, in the order Phoenix release Dockerfile uses: assets.setup, compile,
  # assets.deploy (the release follows). RELEASE_OCI_ASSETS=skip: never.
  defp build_assets do
    aliases = Mix.Project.config()[:aliases] || []

    if System.get_env("RELEASE_OCI_ASSETS") != "skip" and Keyword.has_key?(aliases, :"assets.deploy") do
      if Keyword.has_key?(aliases, :"assets.setup") do
        say("mix assets.setup")
        Mix.Task.run("assets.setup")
      end

      say("mix compile")
      Mix.Task.run("compile")
      say("mix assets.deploy")
      Mix.Task.run("assets.deploy")
    end
  end

  defp fail(msg), do: throw({:release_oci_fail, msg})

  # The releases to assemble, as `mix release` would choose them, with their applications, and
  # which applications belong to the project itself; written to OUT/releases and OUT/apps.
  defp choose(out) do
    config = Mix.Project.config()
    umbrella = Mix.Project.umbrella?()
    own = if umbrella, do: Map.keys(Mix.Project.apps_paths() || %{}), else: [config[:app]]
    deps = Map.keys(Mix.Project.deps_paths()) -- own
    releases = config[:releases] || []
    names = Keyword.keys(releases)
    known = if names == [], do: "none is configured (:releases in mix.exs)", else: Enum.join(names, ", ")

    default = fn ->
      cond do
        names == [] and umbrella ->
          fail("this umbrella project configures no releases: add :releases (with :applications) to its mix.exs")

        names == [] ->
          [config[:app]]

        true ->
          names
      end
    end

    chosen =
      case System.get_env("RELEASE_NAME") || "" do
        "all" ->
          default.()

        "" ->
          case default.() do
            [one] ->
              [one]

            several ->
              case config[:default_release] do
                nil ->
                  fail("the project has several releases and no :default_release: choose one with --release NAME, or --release all; the releases are: " <> Enum.join(several, ", "))

                name ->
                  [name]
              end
          end

        name ->
          atom = String.to_atom(name)

          cond do
            atom in names -> [atom]
            names == [] and not umbrella and atom == config[:app] -> [atom]
            true -> fail("unknown release #{name}; the releases are: " <> known)
          end
      end

    apps_of = fn name ->
      opts = Keyword.get(releases, name, [])
      opts = if is_function(opts, 0), do: opts.(), else: opts
      apps = opts |> Keyword.get(:applications, []) |> Keyword.keys()
      if umbrella, do: apps, else: Enum.uniq([config[:app] | apps])
    end

    chosen = Enum.map(chosen, &{&1, if(Keyword.has_key?(releases, &1), do: :configured, else: :inferred)})

    File.write!(
      Path.join(out, "releases"),
      Enum.map(chosen, fn {name, how} -> "#{name} #{how} #{Enum.join(apps_of.(name), ",")}\n" end)
    )

    File.write!(Path.join(out, "apps"), Enum.map(own, &"own #{&1}\n") ++ Enum.map(deps, &"dep #{&1}\n"))
    {chosen, own}
  end

  # The licences each Hex dependency declares in its package metadata
  # (deps/NAME/hex_metadata.config), for the SBOM: OUT/licenses, one line per dependency that
  # declares some, NAME then each licence, tab-separated.
  defp write_licenses(out) do
    lines =
      for {app, path} <- Enum.sort(Mix.Project.deps_paths()),
          licenses = hex_licenses(Path.join(path, "hex_metadata.config")),
          licenses != [] do
        Enum.join([to_string(app) | licenses], "\t") <> "\n"
      end

    File.write!(Path.join(out, "licenses"), lines)
  end

  defp hex_licenses(file) do
    with {:ok, terms} <- :file.consult(file),
         {_, list} when is_list(list) <- List.keyfind(terms, "licenses", 0) do
      for l <- list, is_binary(l), l = String.trim(String.replace(l, ~r/[\t\r\n]+/, " ")), l != "", do: l
    else
      _ -> []
    end
  end

  defp release_args(name, how, path) do
    named = if how == :configured, do: ["#{name}"], else: []
    named ++ ["--overwrite", "--path", path]
  end

  defp assemble(name, how, path, own) do
    say("mix release #{name} (MIX_ENV=#{Mix.env()})")

    case System.get_env("RELEASE_CACHE") do
      cache when cache in [nil, ""] ->
        Mix.Task.rerun("release", release_args(name, how, path))

      cache ->
        cached = Path.join(cache, "#{name}")
        stamp = Path.join(cache, "#{name}.fingerprint")
        fast? = fast_path(name, how, cached, stamp, own)

        unless fast? do
          File.rm(stamp)
          File.rm_rf!(cached)
          Mix.Task.rerun("release", release_args(name, how, cached))
          # Taken after the release: `mix release` compiled first, so this is what it read.
          case fingerprint(name, how, cached, own) do
            {:ok, _release, print} -> File.write!(stamp, print)
            {:no, why} -> say("release cache: not kept (#{why})")
          end
        end

        File.rm_rf!(path)
        File.mkdir_p!(Path.dirname(path))
        lend(cached, path, cache)
    end
  end

  # The cached release, put in its place in OUT. When OUT goes to release-oci as a tar
  # (STREAM_OUT=1, send_out.sh) and is in the cache volume too, the release is moved there and
  # listed in RELEASE_CACHE/.lent ("OUT-PATH<TAB>CACHED-PATH" lines): send_out.sh moves it back
  # once OUT is sent (nothing else changes it meanwhile: the build holds the cache lock). A build
  # that ends before leaves no cached release, and the next one assembles it in full. Otherwise
  # hard links, else a copy. (Hard-linking the 1,400 files of a Phoenix release took 45 ms.)
  defp lend(cached, path, cache) do
    with "1" <- System.get_env("STREAM_OUT"),
         :ok <- File.rename(cached, path) do
      File.write!(Path.join(cache, ".lent"), [path, "\t", cached, "\n"], [:append])
    else
      _ ->
        case System.cmd("cp", ["-al", cached, path], stderr_to_stdout: true) do
          {_, 0} ->
            :ok

          _ ->
            File.rm_rf!(path)
            {_, 0} = System.cmd("cp", ["-a", cached, path])
        end
    end
  end

  # true when the cached release was brought up to date by copying the own applications.
  defp fast_path(name, how, cached, stamp, own) do
    Mix.Task.run("compile", [])

    with {:cached, true} <- {:cached, File.exists?(Path.join(cached, "releases/start_erl.data"))},
         {:stamp, {:ok, old}} <- {:stamp, File.read(stamp)},
         {:ok, release, ^old} <- fingerprint(name, how, cached, own) do
      File.rm!(stamp)
      apps = for {app, _} <- release.applications, app in own, do: app
      Enum.each(apps, &Mix.Release.copy_app(release, &1))
      File.write!(stamp, old)
      say("release cache: unchanged but for #{Enum.join(apps, ", ")}: copied just those into the release")
      true
    else
      {:no, why} ->
        say("release cache: full assembly (#{why})")
        false

      {:cached, false} ->
        say("release cache: full assembly (no release of an earlier build)")
        false

      {:stamp, _} ->
        say("release cache: full assembly (the cached release has no fingerprint)")
        false

      _ ->
        say("release cache: full assembly (something `mix release` reads has changed)")
        false
    end
  rescue
    e ->
      say("release cache: full assembly (#{Exception.message(e)})")
      false
  end

  defp fingerprint(name, how, cached, own) do
    config = Mix.Project.config()
    aliases = config[:aliases] || []
    named = if how == :configured, do: name, else: nil
    release = Mix.Release.from_config!(named, config, overwrite: true, path: cached)

    cond do
      Keyword.has_key?(aliases, :release) ->
        {:no, "mix.exs has an alias for release"}

      release.steps != [:assemble] ->
        {:no, "the release has steps other than :assemble"}

      true ->
        project_dirs = [Path.expand(Mix.Project.build_path(config)), Path.expand(Mix.Project.deps_path(config))]

        built =
          for {app, props} <- release.applications, app not in own,
              path = Path.expand(to_string(props[:path])),
              Enum.any?(project_dirs, &String.starts_with?(path, &1 <> "/")),
              do: {app, stats(path)}

        # In the order of the applications, not of the map (it differs from VM to VM).
        built = Enum.sort(built)

        rel_dirs = [release.options[:rel_templates_path] || "rel" | List.wrap(release.options[:overlays])]
        config_dir = Path.dirname(config[:config_path] || "config/config.exs")

        term = [
          @fingerprint_version,
          System.version(),
          :erlang.system_info(:otp_release),
          System.get_env("MIX_TARGET"),
          release,
          contents(["mix.exs", "mix.lock", config_dir | rel_dirs]),
          contents([Mix.Project.consolidation_path(config)]),
          built
        ]

        # Deterministic: the applications of the release are a map of some 35 keys, whose order
        # (and so the plain encoding) differs from one VM to the next: a cold build of the
        # Phoenix app missed the fast path.
        {:ok, release, :erlang.term_to_binary(term, [:deterministic])}
    end
  end

  # Every file under PATHS (files or directories) with an MD5 of its content.
  defp contents(paths) do
    for path <- paths, entry <- files(path) do
      case entry do
        {:file, file} -> {file, :erlang.md5(File.read!(file))}
        link -> link
      end
    end
  end

  # Every file under DIR with its size, mtime and mode.
  defp stats(dir) do
    for entry <- files(dir) do
      case entry do
        {:file, file} ->
          %File.Stat{size: size, mtime: mtime, mode: mode} = File.stat!(file, time: :posix)
          {file, size, mtime, mode}

        link ->
          link
      end
    end
  end

  # {:file, PATH} for each regular file under PATH, {:link, PATH, TARGET} for each symlink.
  defp files(path) do
    case File.lstat(path) do
      {:ok, %File.Stat{type: :directory}} ->
        path |> File.ls!() |> Enum.sort() |> Enum.flat_map(&files(Path.join(path, &1)))

      {:ok, %File.Stat{type: :regular}} ->
        [{:file, path}]

      {:ok, %File.Stat{type: :symlink}} ->
        {:ok, target} = :file.read_link_all(String.to_charlist(path))
        [{:link, path, to_string(target)}]

      _ ->
        []
    end
  end
end
