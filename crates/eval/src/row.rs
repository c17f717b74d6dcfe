//! Turns one `#[derive(Serialize)]` struct into named cells, keeping the exact value types that
//! a JSON detour would lose (integers stay integers, a NaN stays visible so it can be refused).

use std::fmt;

use serde::ser::{self, Impossible, Serialize};

/// One value of a table row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Str(String),
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Null,
}

/// Why a value is not a table cell.
#[derive(Debug)]
pub(crate) struct CellError(pub(crate) String);

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CellError {}

impl ser::Error for CellError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        CellError(msg.to_string())
    }
}

/// The fields of a flat struct, in declaration order. A field that fails is named in the error.
pub(crate) fn row_cells<R: Serialize>(row: &R) -> Result<Vec<(String, Cell)>, (String, String)> {
    row.serialize(RowSerializer).map_err(|e| match e {
        RowError::Field(field, reason) => (field, reason),
        RowError::Shape(reason) => (String::new(), reason),
    })
}

#[derive(Debug)]
enum RowError {
    Field(String, String),
    Shape(String),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::Field(field, reason) => write!(f, "{field}: {reason}"),
            RowError::Shape(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for RowError {}

impl ser::Error for RowError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RowError::Shape(msg.to_string())
    }
}

const NOT_A_STRUCT: &str = "a table row must be a struct with named fields";

struct RowSerializer;

struct RowFields(Vec<(String, Cell)>);

impl ser::SerializeStruct for RowFields {
    type Ok = Vec<(String, Cell)>;
    type Error = RowError;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), RowError> {
        let cell = value
            .serialize(CellSerializer)
            .map_err(|e| RowError::Field(key.to_string(), e.0))?;
        self.0.push((key.to_string(), cell));
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, RowError> {
        Ok(self.0)
    }
}

macro_rules! refuse {
    ($err:expr; $($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, Self::Error> {
            Err($err)
        })*
    };
}

impl ser::Serializer for RowSerializer {
    type Ok = Vec<(String, Cell)>;
    type Error = RowError;
    type SerializeSeq = Impossible<Self::Ok, RowError>;
    type SerializeTuple = Impossible<Self::Ok, RowError>;
    type SerializeTupleStruct = Impossible<Self::Ok, RowError>;
    type SerializeTupleVariant = Impossible<Self::Ok, RowError>;
    type SerializeMap = Impossible<Self::Ok, RowError>;
    type SerializeStruct = RowFields;
    type SerializeStructVariant = Impossible<Self::Ok, RowError>;

    fn serialize_struct(self, _: &'static str, len: usize) -> Result<RowFields, RowError> {
        Ok(RowFields(Vec::with_capacity(len)))
    }

    refuse!(RowError::Shape(NOT_A_STRUCT.into());
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64), serialize_f32(f32), serialize_f64(f64), serialize_char(char),
        serialize_str(&str), serialize_bytes(&[u8]), serialize_none(), serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<Self::Ok, RowError> {
        Err(RowError::Shape(NOT_A_STRUCT.into()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Self::Ok, RowError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Self::Ok, RowError> {
        Err(RowError::Shape(NOT_A_STRUCT.into()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, RowError> {
        Err(RowError::Shape(NOT_A_STRUCT.into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, RowError> {
        Err(RowError::Shape(NOT_A_STRUCT.into()))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, RowError> {
        Err(RowError::Shape(NOT_A_STRUCT.into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, RowError> {
        Err(RowError::Shape(NOT_A_STRUCT.into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, RowError> {
        Err(RowError::Shape(NOT_A_STRUCT.into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, RowError> {
        Err(RowError::Shape(NOT_A_STRUCT.into()))
    }
}

const NOT_A_SCALAR: &str =
    "a table cell must be a number, string, bool, unit enum variant or Option of one";

struct CellSerializer;

impl ser::Serializer for CellSerializer {
    type Ok = Cell;
    type Error = CellError;
    type SerializeSeq = Impossible<Cell, CellError>;
    type SerializeTuple = Impossible<Cell, CellError>;
    type SerializeTupleStruct = Impossible<Cell, CellError>;
    type SerializeTupleVariant = Impossible<Cell, CellError>;
    type SerializeMap = Impossible<Cell, CellError>;
    type SerializeStruct = Impossible<Cell, CellError>;
    type SerializeStructVariant = Impossible<Cell, CellError>;

    fn serialize_bool(self, v: bool) -> Result<Cell, CellError> {
        Ok(Cell::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Cell, CellError> {
        Ok(Cell::I64(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Cell, CellError> {
        Ok(Cell::I64(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Cell, CellError> {
        Ok(Cell::I64(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Cell, CellError> {
        Ok(Cell::I64(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Cell, CellError> {
        Ok(Cell::U64(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Cell, CellError> {
        Ok(Cell::U64(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Cell, CellError> {
        Ok(Cell::U64(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Cell, CellError> {
        Ok(Cell::U64(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Cell, CellError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<Cell, CellError> {
        if v.is_finite() {
            Ok(Cell::F64(v))
        } else {
            Err(CellError(format!("{v} is not a finite number")))
        }
    }
    fn serialize_char(self, v: char) -> Result<Cell, CellError> {
        Ok(Cell::Str(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Cell, CellError> {
        Ok(Cell::Str(v.to_string()))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Cell, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
    fn serialize_none(self) -> Result<Cell, CellError> {
        Ok(Cell::Null)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<Cell, CellError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Cell, CellError> {
        Ok(Cell::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Cell, CellError> {
        Ok(Cell::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Cell, CellError> {
        Ok(Cell::Str(variant.to_string()))
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Cell, CellError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Cell, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, CellError> {
        Err(CellError(NOT_A_SCALAR.into()))
    }
}
