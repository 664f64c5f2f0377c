# assemble_mix.exs: the mix part of assemble.sh, in ONE Erlang VM (each `mix` or `elixir` start
# costs about half a second): `mix deps.get`, choosing the releases as `mix release` would, then
# each release. assemble.sh runs it as `elixir -r THIS_FILE -S mix release_oci.assemble`.
# No single quote may appear in this file: assemble.sh holds it in a single-quoted shell string.
#
# Environment: MIX_ENV, MIX_TARGET, OUT, RELEASE_NAME as in assemble.sh, and
#   RELEASE_CACHE  a directory kept between builds (in the build cache volume): each release is
#                  assembled in RELEASE_CACHE/NAME and linked or copied to its place in OUT, and the fast
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
    env = System.get_env("MIX_ENV") || "prod"
    out = System.fetch_env!("OUT")
    say("mix deps.get --only #{env}")
    Mix.Task.run("deps.get", ["--only", env])

    which = if (System.get_env("RELEASE_NAME") || "") == "", do: "default release", else: System.get_env("RELEASE_NAME")
    say("choosing the release(s) (#{which})")
    {chosen, own} = choose(out)
    count = length(chosen)

    for {name, how} <- chosen do
      path = if count == 1, do: Path.join(out, "rel"), else: Path.join([out, "rel", "#{name}"])
      assemble(name, how, path, own)
      File.exists?(Path.join(path, "releases/start_erl.data")) ||
        fail("mix release made no release in #{path}")
      # A :tar step leaves the tarball in the release directory: it is no part of the release.
      Enum.each(Path.wildcard(Path.join(path, "*.tar.gz")), &File.rm!/1)
    end

    # Done: no orderly shutdown of the applications mix started (it takes a while).
    System.halt(0)
  end

  defp say(msg), do: IO.puts("==> " <> msg)

  defp fail(msg) do
    IO.puts("error: " <> msg)
    System.halt(1)
  end

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
        # Hard links when OUT is in the cache volume too (nothing changes the cached release
        # until OUT has been sent: the build holds the cache lock), else a copy.
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

        {:ok, release, :erlang.term_to_binary(term)}
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
