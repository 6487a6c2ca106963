//! The analyzer as an actor: `Analyze` requests answered with their analysis.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tunewright_schemas::Analysis;

use super::{analyze, AnalyzeInput};

pub struct AnalyzerActor;

pub enum AnalyzerMsg {
    Analyze(AnalyzeInput, RpcReplyPort<Analysis>),
}

impl Actor for AnalyzerActor {
    type Msg = AnalyzerMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _me: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _me: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let AnalyzerMsg::Analyze(input, reply) = msg;
        let _ = reply.send(analyze(&input));
        Ok(())
    }
}
