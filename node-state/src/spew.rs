//! A small model of Go values and a renderer that prints them exactly as the kubelet's hasher
//! does: go-spew's `%#v` with `SortKeys`, `SpewKeys`, `DisableMethods`,
//! `DisablePointerAddresses` and `DisableCapacities` (`k8s.io/utils/dump.ForHash`).
//!
//! State types implement [`GoRender`]: they describe themselves as a [`GoValue`] tree carrying
//! the Go type strings of their fields (including the *legacy* type names the kubelet hashes),
//! and [`render`] turns any tree into the hashed text. The grammar, in short:
//!
//! * a value in a struct field or at the top level is prefixed by its type: `(map[string]string)`;
//!   map keys/values and slice elements are not;
//! * structs print `{Name:(T)v Name2:(T2)v2}` in declaration order, unexported fields included;
//! * maps print `map[k:v k2:v2]` with keys sorted (strings byte-wise, integers numerically);
//! * a nil map, slice or pointer prints `<nil>`, an empty one `map[]` / `[]`;
//! * a pointer prints its pointee after `(*T)` in typed position and after `<*>` otherwise;
//! * strings print raw, integers in decimal, `[]byte` as a slice of decimal numbers.
//!
//! ```
//! use node_state::spew::{GoField, GoValue, render};
//!
//! let value = GoValue::Struct(vec![
//!     GoField::new("Name", "string", GoValue::from("a")),
//!     GoField::new("Tags", "map[string]string", GoValue::Map(None)),
//! ]);
//! assert_eq!(render("*pkg.T", &GoValue::ptr(value)), "(*pkg.T){Name:(string)a Tags:(map[string]string)<nil>}");
//! ```

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// A Go value, as far as the kubelet's state types need one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoValue {
    /// Any string kind (`string`, `v1.ResourceName`, `types.UID`, ...): printed raw.
    String(String),
    /// Any signed integer kind.
    Int(i64),
    /// Any unsigned integer kind (`uint64`, `uint8`, `checksum.Checksum`, ...).
    Uint(u64),
    /// A `bool`.
    Bool(bool),
    /// A struct's fields in declaration order. `struct {}` is `Struct(vec![])`.
    Struct(Vec<GoField>),
    /// A map; `None` is Go's nil map. Entries are sorted when rendered.
    Map(Option<Vec<(GoValue, GoValue)>>),
    /// A slice; `None` is Go's nil slice.
    Slice(Option<Vec<GoValue>>),
    /// A pointer; `None` is a nil pointer.
    Ptr(Option<Box<GoValue>>),
}

/// One struct field: its Go name, its Go type string and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoField {
    /// The field name as declared in Go (`PolicyName`, `elems`).
    pub name: Cow<'static, str>,
    /// The field's Go type as `reflect.Type.String()` prints it (`map[string][]string`).
    pub type_name: Cow<'static, str>,
    /// The value.
    pub value: GoValue,
}

impl GoField {
    /// A field.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        type_name: impl Into<Cow<'static, str>>,
        value: GoValue,
    ) -> Self {
        GoField {
            name: name.into(),
            type_name: type_name.into(),
            value,
        }
    }
}

impl From<&str> for GoValue {
    fn from(s: &str) -> Self {
        GoValue::String(s.to_owned())
    }
}

impl From<&String> for GoValue {
    fn from(s: &String) -> Self {
        GoValue::String(s.clone())
    }
}

impl GoValue {
    /// A non-nil pointer to `v`.
    pub fn ptr(v: GoValue) -> Self {
        GoValue::Ptr(Some(Box::new(v)))
    }

    /// A string value (a function item, handy for [`GoValue::map_from`]).
    #[allow(clippy::ptr_arg)]
    pub fn string(s: &String) -> Self {
        GoValue::String(s.clone())
    }

    /// `struct {}{}`.
    pub fn empty_struct() -> Self {
        GoValue::Struct(Vec::new())
    }

    /// A `[]byte` (`nil` when `None`).
    pub fn bytes(b: Option<&[u8]>) -> Self {
        GoValue::Slice(b.map(|b| b.iter().map(|&x| GoValue::Uint(u64::from(x))).collect()))
    }

    /// A map built from an optional Rust map (`None` is nil) with per-key/value conversions.
    pub fn map_from<K, V>(
        map: Option<&BTreeMap<K, V>>,
        mut key: impl FnMut(&K) -> GoValue,
        mut value: impl FnMut(&V) -> GoValue,
    ) -> Self {
        GoValue::Map(map.map(|m| m.iter().map(|(k, v)| (key(k), value(v))).collect()))
    }

    /// A slice built from an optional Rust vector (`None` is nil).
    pub fn slice_from<T>(items: Option<&[T]>, f: impl FnMut(&T) -> GoValue) -> Self {
        GoValue::Slice(items.map(|s| s.iter().map(f).collect()))
    }

    /// A `map[string]string`-shaped value.
    pub fn string_map(map: Option<&BTreeMap<String, String>>) -> Self {
        Self::map_from(map, GoValue::string, GoValue::string)
    }

    /// A `[]string`-shaped value.
    pub fn string_slice(items: Option<&[String]>) -> Self {
        Self::slice_from(items, GoValue::string)
    }

    /// The `map[int]struct {}` of a set of integers (the representation of `cpuset.CPUSet`).
    pub fn int_set(set: &BTreeSet<i64>) -> Self {
        GoValue::Map(Some(
            set.iter()
                .map(|&i| (GoValue::Int(i), GoValue::empty_struct()))
                .collect(),
        ))
    }
}

/// A Rust type that stands for a Go value the kubelet hashes.
pub trait GoRender {
    /// The Go type string printed in typed position, e.g. `*state.CPUManagerCheckpoint`.
    fn go_type(&self) -> Cow<'static, str>;
    /// The value tree.
    fn go_value(&self) -> GoValue;
}

impl GoRender for str {
    fn go_type(&self) -> Cow<'static, str> {
        Cow::Borrowed("string")
    }
    fn go_value(&self) -> GoValue {
        GoValue::String(self.to_owned())
    }
}

impl GoRender for String {
    fn go_type(&self) -> Cow<'static, str> {
        Cow::Borrowed("string")
    }
    fn go_value(&self) -> GoValue {
        GoValue::String(self.clone())
    }
}

/// Renders `value` of Go type `type_name` as `fmt.Sprintf("%#v", value)` under the kubelet's
/// spew configuration.
pub fn render(type_name: &str, value: &GoValue) -> String {
    let mut out = String::with_capacity(256);
    format_value(&mut out, Some(type_name), value);
    out
}

/// Renders any [`GoRender`] value.
pub fn render_value<T: GoRender + ?Sized>(value: &T) -> String {
    render(&value.go_type(), &value.go_value())
}

/// `typed` is `Some(type)` where spew prints the type (top level, struct fields) and `None`
/// where it suppresses it (map keys and values, slice elements: spew's `ignoreNextType`).
fn format_value(out: &mut String, typed: Option<&str>, value: &GoValue) {
    if let GoValue::Ptr(p) = value {
        format_ptr(out, typed, p.as_deref());
        return;
    }
    if let Some(t) = typed {
        out.push('(');
        out.push_str(t);
        out.push(')');
    }
    match value {
        GoValue::String(s) => out.push_str(s),
        GoValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        GoValue::Uint(u) => {
            let _ = write!(out, "{u}");
        }
        GoValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        GoValue::Struct(fields) => {
            out.push('{');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&f.name);
                out.push(':');
                format_value(out, Some(&f.type_name), &f.value);
            }
            out.push('}');
        }
        GoValue::Map(None) | GoValue::Slice(None) => out.push_str("<nil>"),
        GoValue::Map(Some(entries)) => {
            let mut sorted: Vec<&(GoValue, GoValue)> = entries.iter().collect();
            sorted.sort_by(|a, b| compare_keys(&a.0, &b.0));
            out.push_str("map[");
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_value(out, None, k);
                out.push(':');
                format_value(out, None, v);
            }
            out.push(']');
        }
        GoValue::Slice(Some(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_value(out, None, item);
            }
            out.push(']');
        }
        GoValue::Ptr(_) => {}
    }
}

/// spew's `formatPtr`: follows the pointer chain, prints the type (typed position) or `<*…>`
/// (one star per indirection), then the pointee without its type.
fn format_ptr(out: &mut String, typed: Option<&str>, target: Option<&GoValue>) {
    let Some(mut current) = target else {
        if let Some(t) = typed {
            out.push('(');
            out.push_str(t);
            out.push(')');
        }
        out.push_str("<nil>");
        return;
    };
    let mut indirects = 1usize;
    let mut nil_found = false;
    while let GoValue::Ptr(next) = current {
        match next.as_deref() {
            Some(v) => {
                indirects += 1;
                current = v;
            }
            None => {
                indirects += 1;
                nil_found = true;
                break;
            }
        }
    }
    match typed {
        Some(t) => {
            out.push('(');
            out.push_str(t);
            out.push(')');
        }
        None => {
            out.push('<');
            out.push_str(&"*".repeat(indirects));
            out.push('>');
        }
    }
    if nil_found {
        out.push_str("<nil>");
    } else {
        format_value(out, None, current);
    }
}

/// spew's `SortKeys` order: numbers numerically, strings byte-wise, `false < true`; anything
/// else (never a key in the kubelet's types) by its rendering, as `SpewKeys` does.
fn compare_keys(a: &GoValue, b: &GoValue) -> Ordering {
    match (a, b) {
        (GoValue::String(x), GoValue::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (GoValue::Int(x), GoValue::Int(y)) => x.cmp(y),
        (GoValue::Uint(x), GoValue::Uint(y)) => x.cmp(y),
        (GoValue::Bool(x), GoValue::Bool(y)) => x.cmp(y),
        _ => {
            let mut ra = String::new();
            let mut rb = String::new();
            format_value(&mut ra, None, a);
            format_value(&mut rb, None, b);
            ra.cmp(&rb)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str, v: GoValue) -> String {
        render(t, &v)
    }

    #[test]
    fn scalars_are_typed_and_raw() {
        assert_eq!(r("string", "a b\"c".into()), "(string)a b\"c");
        assert_eq!(r("string", "".into()), "(string)");
        assert_eq!(r("int", GoValue::Int(-12)), "(int)-12");
        assert_eq!(
            r("checksum.Checksum", GoValue::Uint(0)),
            "(checksum.Checksum)0"
        );
        assert_eq!(r("bool", GoValue::Bool(true)), "(bool)true");
        assert_eq!(
            r("v1.ResourceName", "memory".into()),
            "(v1.ResourceName)memory"
        );
    }

    #[test]
    fn nil_and_empty_maps_differ() {
        assert_eq!(
            r("map[string]string", GoValue::Map(None)),
            "(map[string]string)<nil>"
        );
        assert_eq!(
            r("map[string]string", GoValue::Map(Some(vec![]))),
            "(map[string]string)map[]"
        );
    }

    #[test]
    fn nil_and_empty_slices_differ() {
        assert_eq!(r("[]int", GoValue::Slice(None)), "([]int)<nil>");
        assert_eq!(r("[]int", GoValue::Slice(Some(vec![]))), "([]int)[]");
    }

    #[test]
    fn map_keys_sorted_bytewise_and_untyped() {
        let m = GoValue::Map(Some(vec![
            ("b".into(), "2".into()),
            ("B".into(), "1".into()),
            ("a".into(), "0".into()),
        ]));
        assert_eq!(
            r("map[string]string", m),
            "(map[string]string)map[B:1 a:0 b:2]"
        );
    }

    #[test]
    fn int_keys_sorted_numerically() {
        let m = GoValue::Map(Some(vec![
            (GoValue::Int(10), GoValue::empty_struct()),
            (GoValue::Int(-1), GoValue::empty_struct()),
            (GoValue::Int(2), GoValue::empty_struct()),
        ]));
        assert_eq!(
            r("map[int]struct {}", m),
            "(map[int]struct {})map[-1:{} 2:{} 10:{}]"
        );
    }

    #[test]
    fn struct_fields_in_order_with_types_and_unexported() {
        let v = GoValue::Struct(vec![
            GoField::new("Z", "string", "z".into()),
            GoField::new(
                "elems",
                "map[int]struct {}",
                GoValue::int_set(&[7, 8].into()),
            ),
        ]);
        assert_eq!(
            r("pkg.T", v),
            "(pkg.T){Z:(string)z elems:(map[int]struct {})map[7:{} 8:{}]}"
        );
    }

    #[test]
    fn slice_of_structs_drops_element_type_keeps_field_types() {
        let elem = GoValue::Struct(vec![GoField::new("N", "int", GoValue::Int(1))]);
        let v = GoValue::Slice(Some(vec![elem.clone(), elem]));
        assert_eq!(r("[]pkg.E", v), "([]pkg.E)[{N:(int)1} {N:(int)1}]");
    }

    #[test]
    fn bytes_print_as_decimal() {
        assert_eq!(
            r("[]uint8", GoValue::bytes(Some(&[10, 31, 255]))),
            "([]uint8)[10 31 255]"
        );
        assert_eq!(r("[]uint8", GoValue::bytes(None)), "([]uint8)<nil>");
        assert_eq!(r("[]uint8", GoValue::bytes(Some(&[]))), "([]uint8)[]");
    }

    #[test]
    fn pointers_typed_at_top_and_starred_inside_containers() {
        let inner = GoValue::Struct(vec![GoField::new("A", "int", GoValue::Int(1))]);
        assert_eq!(
            r("*pkg.T", GoValue::ptr(inner.clone())),
            "(*pkg.T){A:(int)1}"
        );
        assert_eq!(r("*pkg.T", GoValue::Ptr(None)), "(*pkg.T)<nil>");
        let m = GoValue::Map(Some(vec![
            (GoValue::Int(0), GoValue::ptr(inner.clone())),
            (GoValue::Int(1), GoValue::Ptr(None)),
        ]));
        assert_eq!(
            r("map[int]*pkg.T", m),
            "(map[int]*pkg.T)map[0:<*>{A:(int)1} 1:<nil>]"
        );
        let s = GoValue::Slice(Some(vec![GoValue::ptr(GoValue::ptr(inner))]));
        assert_eq!(r("[]**pkg.T", s), "([]**pkg.T)[<**>{A:(int)1}]");
    }

    #[test]
    fn nested_maps_and_slices() {
        let v = GoValue::Map(Some(vec![(
            "r".into(),
            GoValue::Slice(Some(vec!["x".into(), "y".into()])),
        )]));
        assert_eq!(
            r("map[string][]string", v),
            "(map[string][]string)map[r:[x y]]"
        );
    }

    #[test]
    fn string_renders_with_string_prefix() {
        assert_eq!(render_value("{}"), "(string){}");
    }
}
