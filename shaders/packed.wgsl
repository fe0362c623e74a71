// Shared: where entry (i, j) of a symmetric q x q matrix sits in its packed
// upper triangle (row by row), as `linalg::packed_index`.

fn packed_index(i: u32, j: u32, q: u32) -> u32 {
    let a = min(i, j);
    let b = max(i, j);
    return (a * (2u * q + 1u - a)) / 2u + b - a;
}
