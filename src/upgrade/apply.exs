# release-oci (docs/hot-upgrades.md): run in the release's node by `bin/NAME rpc`. The first lines
# (bindings of op, name, from, to, root) are prepended by release-oci. Every line it prints that
# the caller reads starts with "release-oci: ".
say = fn line -> IO.puts("release-oci: " <> line) end

releases = fn ->
  for {_name, vsn, _apps, status} <- :release_handler.which_releases(),
      do: {to_string(vsn), status}
end

in_use = fn ->
  rs = releases.()

  case Enum.find(rs, fn {_, s} -> s == :current end) ||
         Enum.find(rs, fn {_, s} -> s == :permanent end) do
    {vsn, _} -> vsn
    nil -> nil
  end
end

show = fn ->
  for {vsn, status} <- releases.(), do: say.("release #{vsn} #{status}")
end

fail = fn step, reason ->
  show.()
  say.("error #{step}: #{inspect(reason)}")
end

# install_release sets the applications' environment from the target's sys.config, which holds
# the build-time configuration: run its config providers (runtime.exs) into it first, as the node
# did at boot, so that runtime configuration stays (they run again at the next boot anyway).
refresh_config = fn target ->
  path = Path.join([to_string(:code.root_dir()), "releases", target, "sys.config"])

  with {:ok, [sys]} <- :file.consult(String.to_charlist(path)),
       %{providers: [_ | _] = providers} <- get_in(sys, [:elixir, :config_provider_init]) do
    config = Enum.reduce(providers, sys, fn {mod, state}, acc -> mod.load(acc, state) end)

    header =
      path
      |> File.read!()
      |> String.split("\n")
      |> Enum.take_while(&String.starts_with?(&1, "%%"))

    File.write!(path, [Enum.join(header, "\n"), "\n", :io_lib.format(~c"~tp.~n", [config])])
    say.("config providers of #{target} run into its sys.config")
  end

  :ok
end

do_install = fn target ->
  case :release_handler.check_install_release(String.to_charlist(target)) do
    {:ok, _other, _descr} ->
      case :release_handler.install_release(String.to_charlist(target)) do
        {:ok, _other, _descr} ->
          case :release_handler.make_permanent(String.to_charlist(target)) do
            :ok ->
              show.()
              say.("ok #{target} permanent")

            other ->
              fail.("make_permanent", other)
          end

        other ->
          fail.("install_release", other)
      end

    other ->
      fail.("check_install_release", other)
  end
end

install = fn target ->
  refreshed =
    try do
      refresh_config.(target)
    rescue
      e -> {:error, Exception.message(e)}
    end

  case refreshed do
    :ok -> do_install.(target)
    {:error, reason} -> fail.("config_providers", reason)
  end
end

cond do
  to_string(:code.root_dir()) != root ->
    say.(
      "error root: the release runs from #{:code.root_dir()}, not #{root}: the volume was not writable when it started"
    )

  op == "rollback" ->
    current = in_use.()

    target =
      from ||
        Enum.find_value(releases.(), fn {v, s} -> if s == :old and v != current, do: v end)

    cond do
      target == nil -> fail.("rollback", :no_earlier_release)
      current == target -> say.("ok #{target} permanent (already)")
      true -> install.(target)
    end

  true ->
    current = in_use.()
    known = Enum.map(releases.(), fn {v, _} -> v end)

    cond do
      current == to ->
        show.()
        say.("ok #{to} permanent (already)")

      current != from ->
        fail.("upgrade", {:runs, current, :package_upgrades_from, from})

      to in known ->
        install.(to)

      true ->
        case :release_handler.unpack_release(String.to_charlist(name)) do
          {:ok, _vsn} -> install.(to)
          other -> fail.("unpack_release", other)
        end
    end
end
