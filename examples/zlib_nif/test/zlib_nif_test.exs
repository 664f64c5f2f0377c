defmodule ZlibNifTest do
  use ExUnit.Case, async: true

  test "crc32 agrees with :erlang.crc32" do
    for data <- ["", "hello", :binary.copy("zlib", 10_000)] do
      assert ZlibNif.crc32(data) == :erlang.crc32(data)
    end
  end

  test "compress makes what :zlib.uncompress reads" do
    data = :binary.copy("release-oci ", 1_000)
    packed = ZlibNif.compress(data)
    assert byte_size(packed) < byte_size(data)
    assert :zlib.uncompress(packed) == data
  end

  test "zlib_version names the library's version" do
    assert [?1, ?. | _] = ZlibNif.zlib_version()
  end

  test "the server answers the crc32 of the query" do
    assert ZlibNif.Server.handle("GET", "/?hello") == {200, "crc32(hello) = 907060870\n"}
    assert {405, _} = ZlibNif.Server.handle("POST", "/")
  end
end
