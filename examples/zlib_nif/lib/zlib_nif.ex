defmodule ZlibNif do
  @moduledoc "crc32/1, compress/1 and zlib_version/0 from the system's zlib, through a NIF."
  @on_load :load_nif

  @doc false
  def load_nif do
    path = :zlib_nif |> :code.priv_dir() |> Path.join("zlib_nif") |> String.to_charlist()
    :erlang.load_nif(path, 0)
  end

  @doc "The CRC-32 of `data` (as `:erlang.crc32/1` computes it)."
  def crc32(_data), do: :erlang.nif_error(:not_loaded)

  @doc "`data` compressed in the zlib format (`:zlib.uncompress/1` reads it)."
  def compress(_data), do: :erlang.nif_error(:not_loaded)

  @doc "The version of the zlib the NIF runs with, as a charlist."
  def zlib_version, do: :erlang.nif_error(:not_loaded)
end
